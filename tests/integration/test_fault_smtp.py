"""An SMTP server that refuses (4xx or 5xx to MAIL FROM or to the message) or that accepts the
connection and never answers: the alert stays unsent, the send is retried with backoff, and
the alert is delivered once the server behaves, exactly once.

No reply is taken as final, a 5xx included (see orders/tasks.py): the digest waits, `failed`
with the server's reply, until a retry or the outbox sweep gets it through.

The module has its own worker, with a one-second EMAIL_TIMEOUT, on a Redis database of its own.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from django.db import transaction

from orders import notifications, services
from orders.dates import today
from orders.models import OutboxEmail, PurchaseOrder, SlipAlert
from tests.factories import OrderLineFactory, PurchaseOrderFactory
from tests.integration.conftest import (
    REDIS_URL,
    Mailbox,
    Worker,
    needs_real_services,
    start_worker,
    tasks_published_to,
    wait_for,
)

pytestmark = [needs_real_services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

EMAIL_TIMEOUT = 1  # seconds; production's default is 10


def _own_database(url: str) -> str:
    """The shared test Redis, another database number: this module's worker alone reads it."""
    return urlunsplit(urlsplit(url)._replace(path="/7"))


@pytest.fixture(scope="module")
def smtp_worker(
    django_db_setup: Any, django_db_blocker: Any, smtp_server: Mailbox, tmp_path_factory: Any
) -> Iterator[Worker]:
    worker = start_worker(
        tmp_path_factory.mktemp("smtp-worker") / "worker.log",
        broker_url=_own_database(REDIS_URL),
        smtp_port=smtp_server.port,
        env={"EMAIL_TIMEOUT": str(EMAIL_TIMEOUT)},
    )
    yield worker
    worker.stop()


@pytest.fixture
def tasks_to_worker(smtp_worker: Worker) -> Iterator[None]:
    with tasks_published_to(_own_database(REDIS_URL)):
        yield


def _slip() -> PurchaseOrder:
    """An order whose re-quote (one month became four) queues its check: one alert, one
    digest to the buyer."""
    placed = today() - timedelta(days=10)
    order = PurchaseOrderFactory(placed_on=placed, need_by=None)
    OrderLineFactory(order=order)
    with transaction.atomic():
        services.quote_add(
            order=order, quoted_on=placed, delivery_date=placed + timedelta(days=30), check=False
        )
    with transaction.atomic():
        services.quote_add(order=order, delivery_date=placed + timedelta(days=120))
    return order


def _delivered_once_when_it_behaves(order: PurchaseOrder, mailbox: Mailbox, worker: Worker) -> None:
    email = OutboxEmail.objects.get()
    mailbox.behave()
    wait_for(mailbox.count, 30, f"the retried email; worker log:\n{worker.tail()}")
    wait_for(lambda: OutboxEmail.objects.filter(pk=email.pk, status="sent").exists(), 10, "sent")
    [message] = mailbox.messages
    assert message["To"] == order.buyer.email
    assert message["Message-ID"] == email.message_id
    assert not SlipAlert.objects.filter(order=order, notified_at__isnull=True).exists()
    # Retries and sweeps still to come find it sent and send nothing.
    assert notifications.send_outbox_email(email.pk) is False
    assert mailbox.count() == 1


def _unsent_after_retries(order: PurchaseOrder, worker: Worker, attempts: int = 2) -> OutboxEmail:
    """Wait until the digest failed `attempts` times (retried with backoff in between);
    the alert stays unsent meanwhile."""
    email = wait_for(
        lambda: OutboxEmail.objects.filter(status="failed", attempts__gte=attempts).first(),
        30,
        f"{attempts} failed attempts; worker log:\n{worker.tail()}",
    )
    assert SlipAlert.objects.filter(order=order).exists()
    assert not SlipAlert.objects.filter(order=order, notified_at__isnull=False).exists()
    return email


@pytest.mark.usefixtures("tasks_to_worker")
@pytest.mark.parametrize(
    ("command", "reply"),
    [
        ("MAIL", "421 4.3.2 Service not available, closing transmission channel"),
        ("DATA", "451 4.3.0 Temporary failure, try again later"),
        ("DATA", "554 5.7.1 Message rejected by policy"),
    ],
    ids=["421 to MAIL FROM", "451 to DATA", "554 to DATA"],
)
def test_a_refusing_server_leaves_the_alert_unsent_until_it_accepts(
    command: str, reply: str, smtp_worker: Worker, mailbox: Mailbox
) -> None:
    if command == "MAIL":
        mailbox.refuse_mail = reply
    else:
        mailbox.refuse_data = reply
    order = _slip()

    email = _unsent_after_retries(order, smtp_worker)
    assert reply.split(" ", 1)[0] in email.last_error
    assert mailbox.count() == 0
    assert mailbox.refused >= 2

    _delivered_once_when_it_behaves(order, mailbox, smtp_worker)


@pytest.mark.usefixtures("tasks_to_worker")
def test_a_server_that_never_answers_times_out_and_the_alert_is_delivered_later(
    smtp_worker: Worker, mailbox: Mailbox
) -> None:
    mailbox.hang()
    order = _slip()

    email = _unsent_after_retries(order, smtp_worker)
    assert "timed out" in email.last_error

    _delivered_once_when_it_behaves(order, mailbox, smtp_worker)
