"""Redis killed and restarted while tasks wait in the queue, no worker running.

With the settings docker-compose.yml gives the `redis` service (an append-only file, fsync
every second) the queue comes back whole and every alert is delivered once. Without
persistence the queue comes back empty; the test shows what the periodic tasks recover: the
outbox sweep re-queues the digests whose send was lost, and the daily scan raises, and sends,
the alerts whose check was lost; nothing twice. While Redis is down a re-quote is still saved:
queueing its check fails after the commit, and that is logged, not raised.

Each test runs its own redis-server (a private port and directory), so the shared test Redis
and its worker are not disturbed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta

import pytest
import yaml
from django.db import transaction
from django.utils import timezone

from orders import alerts, notifications, services
from orders.dates import today
from orders.models import OutboxEmail, PurchaseOrder, SlipAlert
from orders.tasks import enqueue_sends, scan_open_orders, sweep_outbox
from tests.factories import OrderLineFactory, PurchaseOrderFactory
from tests.integration.conftest import (
    ROOT,
    Mailbox,
    RedisServer,
    Worker,
    needs_real_services,
    tasks_published_to,
    wait_for,
)

pytestmark = [needs_real_services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


def _production_redis_options() -> tuple[str, ...]:
    """The options docker-compose.yml starts the `redis` service with."""
    compose = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    command = compose["services"]["redis"]["command"]
    assert command[0] == "redis-server", command
    return tuple(command[1:])


def _order(placed: timedelta = timedelta(days=10)) -> PurchaseOrder:
    """An open order quoted at a one-month lead, the quote checked at once (nothing to say)."""
    placed_on = today() - placed
    order = PurchaseOrderFactory(placed_on=placed_on, need_by=None)
    OrderLineFactory(order=order)
    with transaction.atomic():
        services.quote_add(
            order=order,
            quoted_on=placed_on,
            delivery_date=placed_on + timedelta(days=30),
            check=False,
        )
    return order


def _requote(order: PurchaseOrder, *, check: bool) -> None:
    """One month became four: x4, over 90 days."""
    with transaction.atomic():
        services.quote_add(
            order=order, delivery_date=order.placed_on + timedelta(days=120), check=check
        )


def _queue_work(broker: RedisServer) -> tuple[PurchaseOrder, PurchaseOrder]:
    """Two kinds of queued work, as production leaves them: the check of a re-quote just
    saved (check_orders), and the send of a digest already in the outbox (send_alert_email)."""
    to_check, to_send = _order(), _order()
    _requote(to_send, check=False)
    alerts.scan_orders(order_ids=[to_send.pk])
    alerts.alert_notices_create(order_ids=[to_send.pk])
    [email_id] = notifications.build_digests()
    with tasks_published_to(broker.url):
        _requote(to_check, check=True)  # queues check_orders once committed
        enqueue_sends([email_id])  # queues send_alert_email (no transaction: at once)
    assert broker.client().llen("celery") == 2
    return to_check, to_send


def _assert_each_told_once(mailbox: Mailbox, orders: list[PurchaseOrder]) -> None:
    assert sorted(m["To"] for m in mailbox.messages) == sorted(o.buyer.email for o in orders)
    assert OutboxEmail.objects.count() == len(orders)
    assert not OutboxEmail.objects.exclude(status=OutboxEmail.Status.SENT).exists()
    for order in orders:
        assert SlipAlert.objects.filter(order=order).exists()
        assert not SlipAlert.objects.filter(order=order, notified_at__isnull=True).exists()


def test_with_the_production_settings_a_restart_loses_no_queued_task(
    redis_servers: Callable[..., RedisServer],
    start_workers: Callable[..., Worker],
    mailbox: Mailbox,
) -> None:
    broker = redis_servers(*_production_redis_options())
    broker.start()
    to_check, to_send = _queue_work(broker)

    broker.kill()  # no chance to save anything: a crash, an OOM kill, a lost container
    broker.start()
    assert broker.client().llen("celery") == 2  # replayed from the append-only file

    worker = start_workers(broker_url=broker.url)
    wait_for(lambda: mailbox.count() >= 2, 30, f"both emails; log:\n{worker.tail()}")
    wait_for(
        lambda: not OutboxEmail.objects.exclude(status=OutboxEmail.Status.SENT).exists(),
        10,
        "both digests marked sent",
    )
    _assert_each_told_once(mailbox, [to_check, to_send])


def test_without_persistence_the_queue_is_lost_and_the_periodic_tasks_recover_it(
    redis_servers: Callable[..., RedisServer],
    start_workers: Callable[..., Worker],
    mailbox: Mailbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broker = redis_servers("--save", "", "--appendonly", "no")
    broker.start()
    to_check, to_send = _queue_work(broker)
    saved_while_down = _order()

    broker.kill()
    # While Redis is down a re-quote is still saved: queueing its check fails after the
    # commit, which is logged, not raised (no error page for a saved quote).
    with tasks_published_to(broker.url), caplog.at_level(logging.ERROR):
        _requote(saved_while_down, check=True)
    assert saved_while_down.quotes.count() == 2
    assert "Could not queue orders.tasks.check_orders (Error 111 connecting to" in caplog.text
    assert "the daily scan will judge these orders." in caplog.text
    broker.start()
    assert broker.client().llen("celery") == 0  # both queued tasks are gone
    worker = start_workers(broker_url=broker.url)

    # What was lost: the digest waits in the outbox, ready; the re-quotes raised no alert.
    [waiting] = OutboxEmail.objects.all()
    assert waiting.status == OutboxEmail.Status.READY
    assert not SlipAlert.objects.filter(order__in=[to_check, saved_while_down]).exists()

    # The sweep (beat, every 10 minutes) re-sends digests left ready for over a minute.
    OutboxEmail.objects.update(created_at=timezone.now() - timedelta(minutes=2))
    with tasks_published_to(broker.url):
        sweep_outbox.delay()
    wait_for(mailbox.count, 30, f"the swept email; log:\n{worker.tail()}")
    assert [m["To"] for m in mailbox.messages] == [to_send.buyer.email]

    # The daily scan (beat, 07:00) judges every open order: the alerts whose check was lost
    # are raised and sent; the digest already sent is not sent again.
    with tasks_published_to(broker.url):
        scan_open_orders.delay()
    wait_for(lambda: mailbox.count() >= 3, 30, f"the scan's emails; log:\n{worker.tail()}")
    wait_for(
        lambda: not OutboxEmail.objects.exclude(status=OutboxEmail.Status.SENT).exists(),
        10,
        "every digest marked sent",
    )
    _assert_each_told_once(mailbox, [to_check, to_send, saved_while_down])
