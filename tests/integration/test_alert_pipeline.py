"""A re-quote saved in the app reaches the buyer's mailbox through Redis, a worker process and
SMTP, exactly once; a second scan sends nothing; an SMTP outage loses nothing."""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from django.db import transaction

from orders import services
from orders.dates import today
from orders.models import OutboxEmail, PurchaseOrder, ScanRun, SlipAlert
from orders.tasks import scan_open_orders
from tests.factories import OrderLineFactory, PurchaseOrderFactory
from tests.integration.conftest import Mailbox, Worker, needs_real_services, wait_for

pytestmark = [
    needs_real_services,
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("tasks_to_redis"),
]


def _open_order() -> PurchaseOrder:
    """Placed ten days ago (the worker judges against the real today) at a one-month lead."""
    placed = today() - timedelta(days=10)
    order = PurchaseOrderFactory(placed_on=placed, need_by=None)
    OrderLineFactory(order=order, quantity=384)
    with transaction.atomic():
        services.quote_add(order=order, quoted_on=placed, delivery_date=placed + timedelta(days=30))
    return order


def _requote(order: PurchaseOrder, lead_days: int) -> None:
    with transaction.atomic():
        services.quote_add(order=order, delivery_date=order.placed_on + timedelta(days=lead_days))


def test_a_requote_reaches_the_buyer_once_and_a_rescan_sends_nothing(
    celery_worker_process: Worker, mailbox: Mailbox
) -> None:
    order = _open_order()
    _requote(order, lead_days=120)  # one month became four: x4, over 90 days

    wait_for(mailbox.count, 30, f"the alert email; worker log:\n{celery_worker_process.tail()}")
    [message] = mailbox.messages
    assert message["To"] == order.buyer.email
    assert order.po_number in message["Subject"]
    body = message.get_payload(0).get_payload(decode=True).decode()
    assert "Lead time: 30 -> 120 days, x4.0" in body
    assert f"https://procurement.example.com/admin/orders/purchaseorder/{order.pk}/" in body
    wait_for(
        lambda: not SlipAlert.objects.filter(order=order, notified_at__isnull=True).exists(),
        10,
        "notified_at to be set",
    )

    scan_open_orders.delay()
    wait_for(
        lambda: ScanRun.objects.filter(finished_at__isnull=False).exists(),
        30,
        f"the scan to finish; worker log:\n{celery_worker_process.tail()}",
    )
    # The worker runs one task at a time, in order: once a second scan has finished, anything
    # the first one queued has run too.
    scan_open_orders.delay()
    wait_for(lambda: ScanRun.objects.filter(finished_at__isnull=False).count() == 2, 30, "scan 2")
    assert OutboxEmail.objects.count() == 1  # no new digest, so nothing more can be sent
    assert mailbox.count() == 1


def test_with_smtp_down_the_alert_stays_unsent_and_is_delivered_once_it_is_back(
    celery_worker_process: Worker, mailbox: Mailbox
) -> None:
    order = _open_order()
    mailbox.stop()
    _requote(order, lead_days=120)

    email = wait_for(
        lambda: OutboxEmail.objects.filter(status="failed").first(),
        30,
        f"a failed send; worker log:\n{celery_worker_process.tail()}",
    )
    assert "Connection refused" in email.last_error or "ConnectionRefused" in email.last_error
    assert SlipAlert.objects.filter(order=order).exists()
    assert not SlipAlert.objects.filter(order=order, notified_at__isnull=False).exists()

    mailbox.start()
    wait_for(mailbox.count, 60, f"the retried email; worker log:\n{celery_worker_process.tail()}")
    wait_for(lambda: OutboxEmail.objects.filter(pk=email.pk, status="sent").exists(), 10, "sent")
    assert not SlipAlert.objects.filter(order=order, notified_at__isnull=True).exists()
    # Retries still scheduled find it sent and do nothing: give them a moment to prove it.
    time.sleep(2)
    assert mailbox.count() == 1
    assert OutboxEmail.objects.get(pk=email.pk).attempts >= 2
