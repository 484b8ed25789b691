"""The slip scan: judge each open order's current state, record new findings as alerts and
close the alerts they replace or that no longer hold; then, as a step of its own before the
digests, note who must hear about them (open alerts only).

It judges state, not events: after a worker outage of any length the next scan raises every
alert that was missed. It is set-based (a fixed number of queries per batch of orders) and safe
to run twice at once: the unique constraints on alerts and notices absorb the race.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import (
    BooleanField,
    Exists,
    ExpressionWrapper,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    Value,
)
from django.db.models.functions import Coalesce, Concat
from django.utils import timezone

from orders import vendor_tally
from orders.bulk import insert_ignoring_conflicts, insert_notices, update_by_pk
from orders.dates import today as local_today
from orders.models import (
    AlertNotice,
    Delivery,
    DeliveryQuote,
    OrderLine,
    PriceAlert,
    PurchaseOrder,
    ScanRun,
    SlipAlert,
)
from orders.price_rules import PRICE_RISE
from orders.quotas import team_notices_create
from orders.slips import Code, Thresholds, cleared_reason, judge

OPEN = SlipAlert.Status.OPEN


@dataclass
class ScanResult:
    orders: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    new_alerts: Counter[str] = field(default_factory=Counter)
    notices: int = 0
    email_ids: list[int] = field(default_factory=list)
    untold: int = 0  # open alerts nobody may be told of (full scans only)
    closed: Counter[str] = field(default_factory=Counter)  # alerts superseded / resolved
    reopened: int = 0

    def merge(self, other: ScanResult) -> None:
        self.orders += other.orders
        self.findings.update(other.findings)
        self.new_alerts.update(other.new_alerts)
        self.closed.update(other.closed)
        self.reopened += other.reopened
        self.notices += other.notices
        self.email_ids += other.email_ids

    def as_dict(self) -> dict[str, Any]:
        return {
            "orders": self.orders,
            "findings": dict(self.findings),
            "new_alerts": sum(self.new_alerts.values()),
            "superseded": self.closed[SlipAlert.Status.SUPERSEDED],
            "resolved": self.closed[SlipAlert.Status.RESOLVED],
            "reopened": self.reopened,
            "notices": self.notices,
            "emails": len(self.email_ids),
            "untold_alerts": self.untold,
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
    """Evaluate the rules on open orders (all, or the given ones): record new alerts,
    supersede the open ones they replace, resolve those whose finding no longer holds, and
    resolve the open alerts of (those of the given) orders that are no longer open.

    With `workers` > 1 (SLIP_SCAN_WORKERS) on PostgreSQL, batches run on that many threads,
    each with its own connection and transaction, so one batch's SQL overlaps another's
    Python. Inside a transaction (a caller's, or a test's) the scan stays on this connection:
    other connections could not see its uncommitted rows."""
    today = today or local_today()
    limits = thresholds()
    batch_size = batch_size or settings.SLIP_SCAN_BATCH_SIZE
    workers = workers or settings.SLIP_SCAN_WORKERS
    result = ScanResult()
    result.closed.update(_resolve_alerts_of_closed_orders(order_ids))
    batches = _batches(order_ids, batch_size)
    if workers <= 1 or connection.vendor != "postgresql" or connection.in_atomic_block:
        for batch, size in batches:
            _scan_batch(batch, size, today, limits, result)
        return result
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="slip-scan") as pool:
        running: set[Future[ScanResult]] = set()
        for batch, size in batches:
            if len(running) >= workers:  # keep at most one batch waiting per thread
                done, running = wait(running, return_when=FIRST_COMPLETED)
                for future in done:
                    result.merge(future.result())
            running.add(pool.submit(_scan_batch_on_own_connection, batch, size, today, limits))
        for future in running:
            result.merge(future.result())
    return result


Batch = tuple[int, int, list[int] | None]  # first and last order pk, and the ids if given


def _batches(order_ids: list[int] | None, batch_size: int) -> Iterator[tuple[Batch, int]]:
    """Open orders in pk order, `batch_size` at a time: each batch as its pk range (and the
    given ids in it), with how many open orders it holds."""
    orders = PurchaseOrder.objects.open()
    if order_ids is not None:
        orders = orders.filter(pk__in=order_ids)
    last_pk = 0
    while True:
        pks = list(
            orders.filter(pk__gt=last_pk).order_by("pk").values_list("pk", flat=True)[:batch_size]
        )
        if not pks:
            return
        last_pk = pks[-1]
        yield (pks[0], last_pk, pks if order_ids is not None else None), len(pks)


# (order id, placed_on, need_by, baseline date, current date, current quote id, received)
ScheduleRow = tuple[int, date, date | None, date, date, int, bool]


def order_schedules(batch: Batch) -> list[ScheduleRow]:
    """Each quoted open order of the batch with its stored schedule (orders.schedules) and
    whether every line is fully received (an order without lines is not), in one query read
    by the batch's pk range."""
    first, last, ids = batch
    orders = PurchaseOrder.objects.open().filter(
        pk__gte=first, pk__lte=last, current_quote__isnull=False
    )
    if ids is not None:
        orders = orders.filter(pk__in=ids)
    # The lines and receipts read are the batch's own (its pk range): unbounded, PostgreSQL
    # may hash every line of every order once per batch rather than probe the batch's, and
    # each batch would cost as much as the whole table.
    in_batch = Q(order_id__gte=first, order_id__lte=last)
    received = (
        Delivery.objects.filter(in_batch, line_id=OuterRef("pk"))
        .order_by()
        .values("line_id")
        .annotate(total=Sum("quantity"))
        .values("total")
    )
    lines = OrderLine.objects.filter(in_batch, order_id=OuterRef("pk"))
    short = lines.filter(quantity__gt=Coalesce(Subquery(received), 0))
    fully_received = Exists(lines) & ~Exists(short)
    return list(
        orders.annotate(
            fully_received=ExpressionWrapper(fully_received, output_field=BooleanField())
        )
        .order_by("pk")
        .values_list(
            "pk",
            "placed_on",
            "need_by",
            "baseline_delivery_date",
            "current_delivery_date",
            "current_quote_id",
            "fully_received",
        )
    )


def _scan_batch_on_own_connection(
    batch: Batch, size: int, today: date, limits: Thresholds
) -> ScanResult:
    result = ScanResult()
    try:
        _scan_batch(batch, size, today, limits, result)
    finally:
        connection.close()  # this thread's connection; the pool's threads end with the scan
    return result


@transaction.atomic
def _scan_batch(
    batch: Batch, size: int, today: date, limits: Thresholds, result: ScanResult
) -> None:
    """Two reads (open alerts, schedules; a third for quote dates when alerts close) and a
    few writes, each one statement whatever the batch's size: open alerts a newer
    finding replaces become superseded, open alerts whose finding no longer holds become
    resolved, then the new alerts are inserted (and a closed alert a finding brings back, on
    the same quote, is opened again). Who must hear of them is decided when the digests are
    built (`alert_notices_create`)."""
    first, last, ids = batch
    scope = Q(order_id__gte=first, order_id__lte=last)
    if ids is not None:
        scope &= Q(order_id__in=ids)
    # Each order's open alert per rule, with the date it was raised for: a re-quote that is
    # not later than it is not a new fact, so nobody is told the same thing twice.
    held: dict[int, dict[str, tuple[int, int, date]]] = defaultdict(dict)
    for pk, order_id, code, quote_id, alerted in (
        SlipAlert.objects.filter(scope, status=OPEN)
        .values_list("pk", "order_id", "code", "quote_id", "quote__delivery_date")
        .order_by()
    ):
        held[order_id][code] = (pk, quote_id, alerted)
    new_alerts = []
    # (alert id, current quote id, whether that quote is the alert's own, why it closed)
    superseded: list[tuple[int, int, bool, str]] = []
    resolved: list[tuple[int, int, bool, str]] = []
    touched: set[int] = set()  # orders whose alerts open or close
    findings = result.findings
    for order_id, placed_on, need_by, baseline, current, quote_id, received in order_schedules(
        batch
    ):
        open_here = held.pop(order_id, {})
        facts: dict[str, Any] = {
            "placed_on": placed_on,
            "baseline": baseline,
            "current": current,
            "need_by": need_by,
            "fully_received": bool(received),
            "today": today,
            "thresholds": limits,
        }
        for finding in judge(current_quote_id=quote_id, **facts):
            code = finding.code
            findings[code] += 1
            previous = open_here.pop(code.value, None)
            if previous is not None and current <= previous[2]:
                continue
            new_alerts.append(
                (order_id, code.value, finding.severity.value, quote_id, finding.message)
            )
            touched.add(order_id)
            if previous is not None:
                superseded.append(
                    (previous[0], quote_id, False, f"delivery now {current.isoformat()}")
                )
        for code, (pk, alert_quote_id, _) in open_here.items():  # no longer found
            why = cleared_reason(Code(code), **facts)
            resolved.append((pk, quote_id, alert_quote_id == quote_id, why))
            touched.add(order_id)
    result.orders += size
    now = timezone.now()
    for status, closing in (
        (SlipAlert.Status.SUPERSEDED, superseded),
        (SlipAlert.Status.RESOLVED, resolved),
    ):
        # Only alerts still open: a concurrent scan may have closed them first.
        closed = update_by_pk(
            SlipAlert,
            "closed_reason",
            _closed_reasons(closing, today),
            constants={"status": status, "closed_at": now},
            only_if={"status": OPEN},
        )
        result.closed[status] += closed
    # Superseded first, so the partial unique index (one open alert per order and rule)
    # takes the new ones. A concurrent scan may insert the same alert first: only what this
    # one inserted comes back, so each alert is counted exactly once.
    created = insert_ignoring_conflicts(
        SlipAlert,
        columns=("order_id", "code", "severity", "quote_id", "message"),
        rows=new_alerts,
        constants={"detected_at": now},
        returning=("order_id", "code"),
    )
    result.new_alerts.update(code for _, code in created)
    inserted = set(created)
    _reopen(
        [
            (order_id, code, quote_id)
            for order_id, code, _, quote_id, _ in new_alerts
            if (order_id, code) not in inserted
        ],
        result,
    )
    # Bulk writes send no signals: the scorecards' open-alert counts of the orders whose
    # alerts opened or closed.
    vendor_tally.open_alerts_refresh(touched)


def _closed_reasons(
    closing: list[tuple[int, int, bool, str]], today: date
) -> list[tuple[int, str]]:
    """(alert id, reason) for each alert to close: "re-quoted <date>: <why>" when the current
    quote is another than the alert's, "re-judged <today>: <why>" when only time, need-by or
    receipts changed. One query, for the quotes' dates."""
    if not closing:
        return []
    quoted_on = dict(
        DeliveryQuote.objects.filter(
            pk__in={quote_id for _, quote_id, same, _ in closing if not same}
        ).values_list("pk", "quoted_on")
    )
    field = SlipAlert._meta.get_field("closed_reason")
    return [
        (
            pk,
            (
                f"re-judged {today.isoformat()}: {why}"
                if same
                else f"re-quoted {quoted_on[quote_id].isoformat()}: {why}"
            )[: field.max_length],
        )
        for pk, quote_id, same, why in closing
    ]


def _reopen(rows: list[tuple[int, str, int]], result: ScanResult) -> None:
    """Open again the closed alerts of (order, code, quote) a finding holds for once more (a
    receipt undone, a need-by date moved back): the same fact on the same quote, so the same
    alert. Rows a concurrent scan inserted are open already and left alone."""
    if not rows:
        return
    match = Q()
    for order_id, code, quote_id in rows:
        match |= Q(order_id=order_id, code=code, quote_id=quote_id)
    try:
        # A savepoint: if another scan opened an alert for the rule meanwhile, the partial
        # unique index refuses this, which is the "at most one open" wanted.
        with transaction.atomic():
            reopened = (
                SlipAlert.objects.filter(match)
                .exclude(status=OPEN)
                .update(status=OPEN, closed_at=None, closed_reason="")
            )
    except IntegrityError:
        return
    result.reopened += reopened


def _resolve_alerts_of_closed_orders(order_ids: list[int] | None) -> Counter[str]:
    """Resolve the open alerts of orders that are no longer open (received, cancelled, back
    to draft): nothing about their delivery is news any more. One UPDATE, whatever the
    number of orders, so a scan's query count stays a constant plus a few per batch; the
    reason names the order's status ("order received")."""
    closed_statuses = [s for s in PurchaseOrder.Status if s not in PurchaseOrder.OPEN_STATUSES]
    # The reason spells the status by its value, which is its label in lower case.
    alerts = SlipAlert.objects.filter(status=OPEN, order__status__in=closed_statuses)
    if order_ids is not None:
        alerts = alerts.filter(order_id__in=order_ids)
    order_status = PurchaseOrder.objects.filter(pk=OuterRef("order_id")).values("status")[:1]
    touched = set(alerts.order_by().values_list("order_id", flat=True))
    resolved = alerts.update(
        status=SlipAlert.Status.RESOLVED,
        closed_at=timezone.now(),
        closed_reason=Concat(Value("order "), Subquery(order_status)),
    )
    vendor_tally.open_alerts_refresh(touched)  # their scorecards' open-alert counts
    return Counter({SlipAlert.Status.RESOLVED: resolved} if resolved else {})


@transaction.atomic  # buyers' and team leads' notices together, or neither
def alert_notices_create(*, order_ids: Collection[int] | None = None) -> int:
    """Round-0 notices for the slip alerts (of the given orders, or all) nobody has been told
    about yet: one per buyer or watcher who may see the order, one per lead of a team still
    waiting for GPUs on the lines that slipped. Returns how many were new.

    Called between the scan and the digests, so the scan only records what it finds (half
    the rows of a first scan) and recipients are looked up once per run, however many
    batches found something. An alert with nobody to tell yet (its buyer inactive, say)
    stays untold and is looked at again next time, so a watcher added later hears of it.
    Alerts go in pk order: two runs at once insert in the same order, so the one that waits
    on the other's notice never holds one the other needs."""
    # Open ones only: one superseded or resolved before anyone heard of it is not news.
    untold = SlipAlert.objects.filter(notified_at__isnull=True, status=OPEN).exclude(
        Exists(AlertNotice.objects.filter(alert=OuterRef("pk"), round=0))
    )
    if order_ids is not None:
        untold = untold.filter(order_id__in=order_ids)
    to_tell = list(untold.order_by("pk").values_list("pk", "order_id"))
    if not to_tell:
        return 0
    recipients = order_recipients(untold.values("order_id"))
    created = insert_notices(
        (alert_id, user_id, email, 0)
        for alert_id, order_id in to_tell
        for user_id, email in recipients.get(order_id, ())
    )
    return created + team_notices_create(alerts=to_tell)


def order_recipients(
    order_ids: Collection[int] | QuerySet[Any],
) -> dict[int, list[tuple[int, str]]]:
    """(user id, email) of each order's buyer and watchers who can receive mail: active, with
    an address, and still allowed to see the order (orders.permissions: a buyer or watcher
    sees it unless their account lost every role). Two queries whatever the number of
    orders; for many, pass them as a queryset of ids (a subquery): an IN list of 100,000 ids
    took seconds to send and parse."""
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
    """Notices for alerts still open and unacknowledged after each SLIP_ESCALATE_DAYS period,
    once per period, to the buyer and the procurement managers."""
    today = today or local_today()
    period = settings.SLIP_ESCALATE_DAYS
    if period <= 0:
        return 0
    first_due = timezone.make_aware(datetime.combine(today - timedelta(days=period - 1), time()))
    managers = [(None, email) for email in settings.PROCUREMENT_MANAGERS]
    stale = (
        SlipAlert.objects.filter(
            status=OPEN,  # a superseded or resolved alert is no longer worth a reminder
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
    """The periodic job: scan every open order, escalate, prepare digests to send, and count
    the open alerts nobody may be told of (notifications.untold_alerts; kept in the run's
    findings as "untold_alerts")."""
    from orders.notifications import build_digests, untold_alerts
    from orders.prices import scan_prices

    today = today or local_today()
    run = ScanRun.objects.create(scanned_for=today)
    result = scan_orders(today=today)
    result.notices += alert_notices_create()
    result.notices += escalate(today=today)
    prices = scan_prices(today=today)
    result.findings[PRICE_RISE] += prices.findings
    result.new_alerts[PRICE_RISE] += prices.new_alerts
    result.notices += prices.notices
    result.email_ids = build_digests()
    result.untold = untold_alerts().count()
    ScanRun.objects.filter(pk=run.pk).update(
        finished_at=timezone.now(),
        orders=result.orders,
        findings={**result.findings, "untold_alerts": result.untold},
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
    ones keep who/when; superseded and resolved slip alerts are history and stay as they are.
    Returns how many were acknowledged."""
    alerts = model.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True)
    if model is not SlipAlert:
        return alerts.update(acknowledged_by=user, acknowledged_at=timezone.now())
    alerts = alerts.filter(status=OPEN)
    touched = set(alerts.order_by().values_list("order_id", flat=True))
    acknowledged = alerts.update(acknowledged_by=user, acknowledged_at=timezone.now())
    # An acknowledged alert is no longer open on a scorecard.
    vendor_tally.open_alerts_refresh(touched)
    return acknowledged
