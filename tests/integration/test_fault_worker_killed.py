"""A Celery worker SIGKILLed in the middle of the daily scan: the scan task is delivered again
and completes; every alert exists once and every recipient gets one email.

The scan is stopped at a known place by a real lock, not by timing: the test holds, uncommitted,
the alert the scan is about to insert for an order in the middle, so the scan's INSERT waits on
the unique index while the batches around it commit. Then the worker is killed. Two ways:
the whole worker (parent and pool child, as when the host or the container dies), whose task
Redis hands out again once the visibility timeout has passed; and the pool child alone (what
the OOM killer picks), whose task the surviving parent hands back at once
(task_reject_on_worker_lost).
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import psycopg
import pytest
from django.db import connection
from django.db.models import Count

from orders import alerts, services
from orders.dates import today
from orders.models import AlertNotice, OutboxEmail, PurchaseOrder, ScanRun, SlipAlert
from orders.tasks import scan_open_orders
from tests.factories import OrderLineFactory, PurchaseOrderFactory, UserFactory
from tests.integration.conftest import (
    Mailbox,
    RedisServer,
    Worker,
    needs_real_services,
    tasks_published_to,
    wait_for,
)

pytestmark = [needs_real_services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ORDERS, BATCH, BUYERS = 60, 10, 3
VISIBILITY_TIMEOUT = 2  # seconds; production's default is an hour (settings.py says why)
WORKER_ENV = {
    "SLIP_SCAN_BATCH_SIZE": str(BATCH),
    "SLIP_SCAN_WORKERS": "2",
    "CELERY_BROKER_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
}


def _slipping_orders() -> list[PurchaseOrder]:
    """Orders placed ten days ago at a one-month lead, re-quoted to four months (x4, over 90
    days), spread over three buyers. Quotes are added without the per-quote check, so only
    the scan finds them."""
    buyers = [UserFactory() for _ in range(BUYERS)]
    placed = today() - timedelta(days=10)
    orders = []
    for i in range(ORDERS):
        order = PurchaseOrderFactory(buyer=buyers[i % BUYERS], placed_on=placed, need_by=None)
        OrderLineFactory(order=order)
        services.quote_add(
            order=order, quoted_on=placed, delivery_date=placed + timedelta(days=30), check=False
        )
        services.quote_add(order=order, delivery_date=placed + timedelta(days=120), check=False)
        orders.append(order)
    return orders


@contextmanager
def _alert_held_uncommitted(order: PurchaseOrder) -> Iterator[psycopg.Connection]:
    """Another connection inserts, and keeps uncommitted, the lead_time_multiplied alert the
    scan will find for this order: the scan's insert of it waits until this one rolls back."""
    db = connection.settings_dict
    holder = psycopg.connect(
        host=db["HOST"], port=db["PORT"], user=db["USER"], dbname=db["NAME"], autocommit=False
    )
    requote = order.quotes.order_by("-quoted_on", "-id").first()
    holder.execute(
        f"INSERT INTO {SlipAlert._meta.db_table} "
        "(order_id, code, severity, quote_id, message, detected_at) "
        "VALUES (%s, 'lead_time_multiplied', 'warning', %s, 'held by the test', now())",
        [order.pk, requote.pk],
    )
    try:
        yield holder
    finally:
        holder.rollback()
        holder.close()


def _waiting_on(holder: psycopg.Connection) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
            [holder.info.backend_pid],
        )
        return cursor.fetchone()[0] > 0


@pytest.mark.parametrize("killed", ["whole worker", "pool child"])
def test_a_worker_killed_mid_scan_loses_nothing_and_duplicates_nothing(
    killed: str,
    start_workers: Callable[..., Worker],
    redis_servers: Callable[..., RedisServer],
    mailbox: Mailbox,
) -> None:
    broker = redis_servers("--save", "", "--appendonly", "no")
    broker.start()
    orders = _slipping_orders()
    held = orders[3 * BATCH + BATCH // 2]  # in the fourth of six batches
    held_batch = {o.pk for o in orders[3 * BATCH : 4 * BATCH]}
    worker = start_workers(broker_url=broker.url, pool="prefork", env=WORKER_ENV)

    with _alert_held_uncommitted(held) as holder:
        with tasks_published_to(broker.url):
            scan_open_orders.delay()
        wait_for(lambda: _waiting_on(holder), 60, f"the scan to wait; log:\n{worker.tail()}")
        delivered_before = time.time()
        # The second connection goes on with the other batches: wait until they are committed.
        wait_for(
            lambda: SlipAlert.objects.values("order").distinct().count() == ORDERS - BATCH,
            60,
            f"the other batches; log:\n{worker.tail()}",
        )
        # Mid-scan: alerts for most orders, none for the held batch; no notices yet (they
        # are noted after the scan) and no digest.
        assert not SlipAlert.objects.filter(order__in=held_batch).exists()
        assert not AlertNotice.objects.exists()
        assert not OutboxEmail.objects.exists()
        assert ScanRun.objects.get().finished_at is None

        if killed == "whole worker":
            worker.kill()
        else:
            [child] = worker.pool_children()
            os.kill(child, signal.SIGKILL)
    # The test's transaction is rolled back. The killed scan's own is too: its backend finds
    # its client gone.

    if killed == "whole worker":
        # Nobody acknowledged or handed back the task: Redis still holds it as delivered.
        assert broker.client().hlen("unacked") == 1
        # Redis hands it out again once it is older than the visibility timeout; a worker
        # (re)started after that finds it at once (running workers look every ~100 s).
        time.sleep(max(0.0, delivered_before + VISIBILITY_TIMEOUT + 0.5 - time.time()))
        worker = start_workers(broker_url=broker.url, pool="prefork", env=WORKER_ENV)

    wait_for(
        lambda: ScanRun.objects.filter(finished_at__isnull=False).exists(),
        60,
        f"the scan to be delivered again and finish; log:\n{worker.tail()}",
    )
    wait_for(lambda: mailbox.count() >= BUYERS, 30, f"the emails; log:\n{worker.tail()}")
    wait_for(
        lambda: not OutboxEmail.objects.exclude(status=OutboxEmail.Status.SENT).exists(),
        10,
        "every digest marked sent",
    )

    # Every alert once: each order has its findings, none twice, and a rescan finds nothing.
    assert SlipAlert.objects.values("order").distinct().count() == ORDERS
    assert not (
        SlipAlert.objects.values("order", "code").annotate(n=Count("id")).filter(n__gt=1).exists()
    )
    assert sum(alerts.scan_orders().new_alerts.values()) == 0
    assert not SlipAlert.objects.filter(notified_at__isnull=True).exists()
    assert not AlertNotice.objects.filter(email__isnull=True).exists()
    # Every email once: one digest per buyer, sent in one attempt, naming all their orders,
    # those alerted before the kill included.
    buyers = {order.buyer.email: order.buyer for order in orders}
    assert sorted(message["To"] for message in mailbox.messages) == sorted(buyers)
    assert OutboxEmail.objects.count() == BUYERS
    assert set(OutboxEmail.objects.values_list("attempts", flat=True)) == {1}
    for message in mailbox.messages:
        body = message.get_payload(0).get_payload(decode=True).decode()
        theirs = [o.po_number for o in orders if o.buyer.email == message["To"]]
        assert [po for po in theirs if po not in body] == []
    # The killed run's record stays without an end; the run delivered again finished.
    assert ScanRun.objects.filter(finished_at__isnull=True).count() == 1
