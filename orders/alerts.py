"""The slip scan: judge each open order's current state, record new findings as alerts, and
note who must hear about them.

It judges state, not events: after a worker outage of any length the next scan raises every
alert that was missed. It is set-based (a fixed number of queries per batch of orders) and safe
to run twice at once: the unique constraints on alerts and notices absorb the race.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef, Q, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.bulk import insert_ignoring_conflicts, insert_notices
from orders.dates import today as local_today
from orders.models import (
    AlertNotice,
    DeliveryQuote,
    OrderLine,
    PriceAlert,
    PurchaseOrder,
    ScanRun,
    SlipAlert,
)
from orders.price_rules import PRICE_RISE
from orders.quotas import team_notices_create
from orders.slips import OrderFacts, Quote, Thresholds, evaluate


@dataclass
class ScanResult:
    orders: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    new_alerts: Counter[str] = field(default_factory=Counter)
    notices: int = 0
    email_ids: list[int] = field(default_factory=list)

    def merge(self, other: ScanResult) -> None:
        self.orders += other.orders
        self.findings.update(other.findings)
        self.new_alerts.update(other.new_alerts)
        self.notices += other.notices
        self.email_ids += other.email_ids

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "findings": dict(self.findings),
            "new_alerts": sum(self.new_alerts.values()),
            "notices": self.notices,
            "emails": len(self.email_ids),
        }


def thresholds() -> Thresholds:
    return Thresholds(
        lead_time_factor=settings.SLIP_LEAD_TIME_FACTOR,
        lead_time_limit_days=settings.SLIP_LEAD_TIME_LIMIT_DAYS,
        watched_months=frozenset(settings.SLIP_WATCHED_MONTHS),
    )


def scan_orders(
    *,
    order_ids: list[int] | None = None,
    today: date | None = None,
    batch_size: int | None = None,
    workers: int | None = None,
) -> ScanResult:
    """Evaluate the rules on open orders (all, or the given ones) and record new alerts.

    With `workers` > 1 (SLIP_SCAN_WORKERS) on PostgreSQL, batches run on that many threads,
    each with its own connection and transaction, so one batch's SQL overlaps another's
    Python. Inside a transaction (a caller's, or a test's) the scan stays on this connection:
    other connections could not see its uncommitted rows."""
    today = today or local_today()
    limits = thresholds()
    batch_size = batch_size or settings.SLIP_SCAN_BATCH_SIZE
    workers = workers or settings.SLIP_SCAN_WORKERS
    result = ScanResult()
    batches = _batches(order_ids, batch_size)
    if workers <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for batch, scope in batches:
            _scan_batch(batch, scope, today, limits, result)
        return result
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slip-scan") as pool:
        running: set[Future[ScanResult]] = set()
        for batch, scope in batches:
            if len(running) >= workers:  # keep at most one batch waiting per thread
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    result.merge(future.result())
            running.add(pool.submit(_scan_batch_on_own_connection, batch, scope, today, limits))
        for future in running:
            result.merge(future.result())
    return result


def _batches(
    order_ids: list[int] | None, batch_size: int
) -> Iterator[tuple[list[tuple[int, date, date | None, str]], Q]]:
    """Open orders in pk order, `batch_size` at a time, each with the filter that finds its
    lines, quotes and alerts."""
    orders = PurchaseOrder.objects.open()
    if order_ids is not None:
        orders = orders.filter(pk__in=order_ids)
    last_pk = 0
    while True:
        batch = list(
            orders.filter(pk__gt=last_pk)
            .order_by("pk")
            .values_list("pk", "placed_on", "need_by", "status")[:batch_size]
        )
        if not batch:
            return
        last_pk = batch[-1][0]
        if order_ids is None:
            # A pk range (an index range scan) narrowed to the batch's open orders: a short
            # statement, where an IN list of thousands of ids costs more to send and parse
            # than the rows it finds. A plain join on status made PostgreSQL hash-join the
            # whole orders table for every batch (bench/scan_slips.py).
            first_pk = batch[0][0]
            scope = Q(
                order_id__gte=first_pk,
                order_id__lte=last_pk,
                order__in=orders.filter(pk__gte=first_pk, pk__lte=last_pk).values("pk"),
            )
        else:
            scope = Q(order_id__in=[row[0] for row in batch])
        yield batch, scope


def _scan_batch_on_own_connection(
    batch: list[tuple[int, date, date | None, str]], scope: Q, today: date, limits: Thresholds
) -> ScanResult:
    result = ScanResult()
    try:
        _scan_batch(batch, scope, today, limits, result)
    finally:
        connection.close()  # this thread's connection; the pool's threads end with the scan
    return result


@transaction.atomic
def _scan_batch(
    batch: list[tuple[int, date, date | None, str]],
    scope: Q,
    today: date,
    limits: Thresholds,
    result: ScanResult,
) -> None:
    """Four reads, then at most three writes (new alerts, their recipients, notices); with
    new alerts, one more read for team leads (two and a write when a team waits on them)."""
    lines: dict[int, list[tuple[int, int, int]]] = defaultdict(list)
    for line_id, order_id, quantity, received in (
        OrderLine.objects.filter(scope)
        .annotate(received=Coalesce(Sum("deliveries__quantity"), 0))
        .values_list("id", "order_id", "quantity", "received")
    ):
        lines[order_id].append((line_id, quantity, received))
    quotes: dict[int, list[Quote]] = defaultdict(list)
    for pk, order_id, line_id, quoted_on, delivery_date in DeliveryQuote.objects.filter(
        scope
    ).values_list("id", "order_id", "line_id", "quoted_on", "delivery_date"):
        quotes[order_id].append(Quote(pk, quoted_on, delivery_date, line_id))
    # The latest date already alerted per (order, code): a re-quote that is not later than it
    # is not a new fact, so nobody is told the same thing twice. Alerts nobody was told about
    # (no recipient then, or found before this code existed) are told now.
    alerted: dict[tuple[int, str], date] = {}
    untold: list[tuple[int, int]] = []
    told = Exists(AlertNotice.objects.filter(alert=OuterRef("pk"), round=0))
    for alert_id, order_id, code, alerted_date, notified_at, was_told in (
        SlipAlert.objects.filter(scope)
        .annotate(told=told)
        .values_list("id", "order_id", "code", "quote__delivery_date", "notified_at", "told")
    ):
        key = (order_id, code)
        alerted[key] = max(alerted_date, alerted.get(key, alerted_date))
        if notified_at is None and not was_told:
            untold.append((alert_id, order_id))

    new_alerts = []
    for order_id, placed_on, need_by, status in batch:
        order_lines = lines.get(order_id, ())
        facts = OrderFacts(
            placed_on=placed_on,
            status=status,
            quotes=quotes.get(order_id, ()),
            line_ids=[line_id for line_id, _, _ in order_lines],
            need_by=need_by,
            fully_received=bool(order_lines)
            and all(received >= quantity for _, quantity, received in order_lines),
        )
        findings = evaluate(facts, today, limits)
        if not findings:
            continue
        due = {q.id: q.delivery_date for q in facts.quotes}
        for finding in findings:
            result.findings[finding.code] += 1
            previous = alerted.get((order_id, finding.code))
            if previous is not None and due[finding.quote_id] <= previous:
                continue
            new_alerts.append(
                (
                    order_id,
                    finding.code.value,
                    finding.severity.value,
                    finding.quote_id,
                    finding.message,
                )
            )
    result.orders += len(batch)
    # A concurrent scan may insert the same alert first: only what this one inserted comes
    # back, so each alert is counted, and its recipients noted, exactly once.
    created = insert_ignoring_conflicts(
        SlipAlert,
        columns=("order_id", "code", "severity", "quote_id", "message"),
        rows=new_alerts,
        constants={"detected_at": timezone.now()},
        returning=("pk", "order_id", "code"),
    )
    result.new_alerts.update(code for _, _, code in created)
    to_tell = untold + [(alert_id, order_id) for alert_id, order_id, _ in created]
    if to_tell:
        recipients = order_recipients(list({order_id for _, order_id in to_tell}))
        result.notices += insert_notices(
            (alert_id, user_id, email, 0)
            for alert_id, order_id in to_tell
            for user_id, email in recipients.get(order_id, ())
        )
        # And the leads of teams with GPUs promised on the lines that slipped.
        result.notices += team_notices_create(alerts=to_tell)


def order_recipients(order_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """(user id, email) of each order's buyer and watchers who can receive mail: active, with
    an address, and still allowed to see the order (orders.permissions: a buyer or watcher
    sees it unless their account lost every role). Two queries whatever the number of
    orders."""
    from orders.permissions import users_who_see_their_orders

    # A subquery: it adds no query of its own.
    allowed = users_who_see_their_orders().values("pk")
    found: dict[int, dict[int, str]] = defaultdict(dict)
    for order_id, user_id, email in (
        PurchaseOrder.objects.filter(pk__in=order_ids, buyer__is_active=True)
        .filter(buyer__in=allowed)
        .exclude(buyer__email="")
        .values_list("pk", "buyer_id", "buyer__email")
    ):
        found[order_id][user_id] = email
    watchers = (
        PurchaseOrder.watchers.through.objects.filter(
            purchaseorder_id__in=order_ids, user__is_active=True
        )
        .filter(user__in=allowed)
        .exclude(user__email="")
    )
    for order_id, user_id, email in watchers.values_list(
        "purchaseorder_id", "user_id", "user__email"
    ):
        found[order_id][user_id] = email
    return {order_id: list(users.items()) for order_id, users in found.items()}


def escalate(*, today: date | None = None) -> int:
    """Notices for alerts still unacknowledged after each SLIP_ESCALATE_DAYS period, once per
    period, to the buyer and the procurement managers."""
    today = today or local_today()
    period = settings.SLIP_ESCALATE_DAYS
    if period <= 0:
        return 0
    first_due = timezone.make_aware(datetime.combine(today - timedelta(days=period - 1), time()))
    managers = [(None, email) for email in settings.PROCUREMENT_MANAGERS]
    stale = (
        SlipAlert.objects.filter(
            acknowledged_at__isnull=True,
            detected_at__lt=first_due,
            order__status__in=PurchaseOrder.OPEN_STATUSES,
        )
        .annotate(last_round=Coalesce(Max("notices__round"), 0))
        .values_list("id", "order_id", "detected_at", "last_round")
        .iterator(chunk_size=2000)
    )
    created = 0
    chunk: list[tuple[int, int, int]] = []
    for alert_id, order_id, detected_at, last_round in stale:
        escalation_round = (today - timezone.localdate(detected_at)).days // period
        if escalation_round > last_round:  # this period's reminder is not out yet
            chunk.append((alert_id, order_id, escalation_round))
        if len(chunk) == 2000:
            created += _escalation_notices(chunk, managers)
            chunk = []
    if chunk:
        created += _escalation_notices(chunk, managers)
    return created


def _escalation_notices(rows: list[tuple[int, int, int]], managers: list[tuple[None, str]]) -> int:
    buyers = {
        order_id: [(user_id, email)]
        for order_id, user_id, email in PurchaseOrder.objects.filter(
            pk__in={order_id for _, order_id, _ in rows}, buyer__is_active=True
        )
        .exclude(buyer__email="")
        .values_list("pk", "buyer_id", "buyer__email")
    }
    return insert_notices(
        (alert_id, user_id, email, escalation_round)
        for alert_id, order_id, escalation_round in rows
        for user_id, email in buyers.get(order_id, []) + managers
    )


def run_full_scan(*, today: date | None = None) -> ScanResult:
    """The periodic job: scan every open order, escalate, and prepare digests to send."""
    from orders.notifications import build_digests
    from orders.prices import scan_prices

    today = today or local_today()
    run = ScanRun.objects.create(scanned_for=today)
    result = scan_orders(today=today)
    result.notices += escalate(today=today)
    prices = scan_prices(today=today)
    result.findings[PRICE_RISE] += prices.findings
    result.new_alerts[PRICE_RISE] += prices.new_alerts
    result.notices += prices.notices
    result.email_ids = build_digests()
    ScanRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now(),
        orders=result.orders,
        findings=dict(result.findings),
        new_alerts=sum(result.new_alerts.values()),
        notices=result.notices,
        emails=len(result.email_ids),
    )
    return result


@transaction.atomic
def alerts_acknowledge(
    *, alert_ids: list[int], user: Any, model: type[SlipAlert | PriceAlert] = SlipAlert
) -> int:
    """Mark alerts (slip or price) as seen; escalation stops for them. Already acknowledged
    ones keep who/when."""
    return model.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True).update(
        acknowledged_by=user, acknowledged_at=timezone.now()
    )
