"""The slip scan: judge each open order's current state, record new findings as alerts, and
note who must hear about them.

It judges state, not events: after a worker outage of any length the next scan raises every
alert that was missed. It is set-based (a fixed number of queries per batch of orders) and safe
to run twice at once: the unique constraints on alerts and notices absorb the race.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Count, Max, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.dates import today as local_today
from orders.models import (
    AlertNotice,
    DeliveryQuote,
    OrderLine,
    PurchaseOrder,
    ScanRun,
    SlipAlert,
)
from orders.slips import OrderFacts, Quote, Thresholds, evaluate


@dataclass
class ScanResult:
    orders: int = 0
    findings: Counter[str] = field(default_factory=Counter)
    new_alerts: Counter[str] = field(default_factory=Counter)
    notices: int = 0
    email_ids: list[int] = field(default_factory=list)

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
) -> ScanResult:
    """Evaluate the rules on open orders (all, or the given ones) and record new alerts."""
    today = today or local_today()
    limits = thresholds()
    batch_size = batch_size or settings.SLIP_SCAN_BATCH_SIZE
    result = ScanResult()
    orders = PurchaseOrder.objects.open()
    if order_ids is not None:
        orders = orders.filter(pk__in=order_ids)
    last_pk = 0
    while True:
        batch = list(
            orders.filter(pk__gt=last_pk)
            .order_by("pk")
            .values("pk", "placed_on", "need_by", "status", "buyer_id")[:batch_size]
        )
        if not batch:
            return result
        last_pk = batch[-1]["pk"]
        _scan_batch(batch, today, limits, result)


@transaction.atomic
def _scan_batch(
    batch: list[dict[str, Any]], today: date, limits: Thresholds, result: ScanResult
) -> None:
    ids = [row["pk"] for row in batch]
    lines: dict[int, list[dict[str, Any]]] = defaultdict(list)
    for line in (
        OrderLine.objects.filter(order_id__in=ids)
        .annotate(received=Coalesce(Sum("deliveries__quantity"), 0))
        .values("id", "order_id", "quantity", "received")
    ):
        lines[line["order_id"]].append(line)
    quotes: dict[int, list[Quote]] = defaultdict(list)
    for pk, order_id, line_id, quoted_on, delivery_date in DeliveryQuote.objects.filter(
        order_id__in=ids
    ).values_list("id", "order_id", "line_id", "quoted_on", "delivery_date"):
        quotes[order_id].append(Quote(pk, quoted_on, delivery_date, line_id))
    # The latest date already alerted per (order, code): a re-quote that is not later than it
    # is not a new fact, so nobody is told the same thing twice.
    alerted: dict[tuple[int, str], date] = {}
    existing: Counter[str] = Counter()
    for order_id, code, alerted_date in SlipAlert.objects.filter(order_id__in=ids).values_list(
        "order_id", "code", "quote__delivery_date"
    ):
        key = (order_id, code)
        alerted[key] = max(alerted_date, alerted.get(key, alerted_date))
        existing[code] += 1

    new_alerts = []
    for row in batch:
        order_lines = lines[row["pk"]]
        facts = OrderFacts(
            placed_on=row["placed_on"],
            status=row["status"],
            quotes=quotes[row["pk"]],
            line_ids=[line["id"] for line in order_lines],
            need_by=row["need_by"],
            fully_received=bool(order_lines)
            and all(line["received"] >= line["quantity"] for line in order_lines),
        )
        due = {q.id: q.delivery_date for q in facts.quotes}
        for finding in evaluate(facts, today, limits):
            result.findings[finding.code] += 1
            previous = alerted.get((row["pk"], finding.code))
            if previous is not None and due[finding.quote_id] <= previous:
                continue
            new_alerts.append(
                SlipAlert(
                    order_id=row["pk"],
                    code=finding.code,
                    severity=finding.severity,
                    quote_id=finding.quote_id,
                    message=finding.message,
                )
            )
    result.orders += len(batch)
    if new_alerts:
        # ignore_conflicts: a concurrent scan may have inserted the same alert first. The
        # objects it returns include those, so count what the table now holds instead.
        SlipAlert.objects.bulk_create(new_alerts, ignore_conflicts=True)
        now = Counter(
            dict(
                SlipAlert.objects.filter(order_id__in=ids)
                .values("code")
                .annotate(n=Count("id"))
                .values_list("code", "n")
            )
        )
        result.new_alerts.update(now - existing)
    result.notices += _notices_for_new_alerts(ids)


def _notices_for_new_alerts(order_ids: list[int]) -> int:
    """Round-0 notices for alerts nobody has been told about yet: the buyer and the watchers
    who are active and have an email address."""
    # Two plain selects and a set difference: a NOT EXISTS here made PostgreSQL pick a poor
    # plan over rows inserted moments before in the same transaction (bench/scan_slips.py).
    told = set(
        AlertNotice.objects.filter(alert__order_id__in=order_ids, round=0).values_list(
            "alert_id", flat=True
        )
    )
    alerts_by_order: dict[int, list[int]] = defaultdict(list)
    for alert_id, order_id in SlipAlert.objects.filter(
        order_id__in=order_ids, notified_at__isnull=True
    ).values_list("id", "order_id"):
        if alert_id not in told:
            alerts_by_order[order_id].append(alert_id)
    if not alerts_by_order:
        return 0
    recipients = order_recipients(list(alerts_by_order))
    notices = [
        AlertNotice(alert_id=alert_id, recipient_id=user_id, recipient_email=email, round=0)
        for order_id, alert_ids in alerts_by_order.items()
        for alert_id in alert_ids
        for user_id, email in recipients.get(order_id, ())
    ]
    AlertNotice.objects.bulk_create(notices, ignore_conflicts=True)
    return len(notices)


def order_recipients(order_ids: list[int]) -> dict[int, list[tuple[int, str]]]:
    """(user id, email) of each order's buyer and watchers who can receive mail: active, with
    an address. Two queries whatever the number of orders."""
    found: dict[int, dict[int, str]] = defaultdict(dict)
    for order_id, user_id, email in (
        PurchaseOrder.objects.filter(pk__in=order_ids, buyer__is_active=True)
        .exclude(buyer__email="")
        .values_list("pk", "buyer_id", "buyer__email")
    ):
        found[order_id][user_id] = email
    watchers = PurchaseOrder.watchers.through.objects.filter(
        purchaseorder_id__in=order_ids, user__is_active=True
    ).exclude(user__email="")
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
    notices = [
        AlertNotice(
            alert_id=alert_id,
            recipient_id=user_id,
            recipient_email=email,
            round=escalation_round,
        )
        for alert_id, order_id, escalation_round in rows
        for user_id, email in buyers.get(order_id, []) + managers
    ]
    AlertNotice.objects.bulk_create(notices, ignore_conflicts=True)
    return len(notices)


def run_full_scan(*, today: date | None = None) -> ScanResult:
    """The periodic job: scan every open order, escalate, and prepare digests to send."""
    from orders.notifications import build_digests

    today = today or local_today()
    run = ScanRun.objects.create(scanned_for=today)
    result = scan_orders(today=today)
    result.notices += escalate(today=today)
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
def alerts_acknowledge(*, alert_ids: list[int], user: Any) -> int:
    """Mark alerts as seen; escalation stops for them. Already acknowledged ones keep who/when."""
    return SlipAlert.objects.filter(pk__in=alert_ids, acknowledged_at__isnull=True).update(
        acknowledged_by=user, acknowledged_at=timezone.now()
    )
