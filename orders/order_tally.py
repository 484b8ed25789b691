"""The order tally (orders.models.tallies.OrderTally): every order, and every open slip alert,
counted per vendor, buyer, status and whether the order is slipping. The order list and the
dashboard of a viewer who sees every order count from it: a few hundred counters whatever the
number of orders (`order_count`, `open_alert_counts`).

`order_part` defines what an order adds. `refresh(order_ids)` is the one write path, run in
the caller's transaction (orders.tally.KeyedTally applies the difference). Every write that
changes what an order adds reaches it:

- a new order, an order's status, vendor or buyer saved, its slip changed by a quote, a line
  or an import: `orders.schedules.refresh`, after the stored schedule is written;
- alerts opened, closed, acknowledged, saved or deleted (the slip scan, resolving the alerts
  of closed orders, acknowledgements, the alert signals):
  `orders.vendor_tally.open_alerts_refresh`;
- an order deleted: `orders.schedules.forget`.

Anything else (raw SQL, QuerySet.update) is found by `drift()` and repaired by
`manage.py check_schedules --fix`.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Sequence

from django.db import transaction
from django.db.models import Q, Sum

from orders.bulk import chunks
from orders.models import OrderTally, OrderTallyPart, PurchaseOrder, SlipAlert, open_alert_q
from orders.slips import is_slipping
from orders.tally import Key, KeyedTally, drift_of_orders

CHUNK = 2000
ORDER = OrderTally.ORDER
OpenAlerts = dict[int, list[tuple[str, str]]]  # order pk -> (code, severity) of its open alerts

ORDERS = KeyedTally(
    OrderTally,
    keys=("vendor_pk", "buyer_pk", "status", "slipping", "code", "severity"),
    count="n",
    added=OrderTallyPart,
)


def order_part(
    *,
    vendor_id: int,
    buyer_id: int,
    status: str,
    slip_days: int | None,
    alerts: Iterable[tuple[str, str]],
) -> Counter[Key]:
    """What an order adds to the tally: itself once (code ""), and each of its open alerts
    (code, severity) once, under its vendor, buyer, status and whether it is slipping."""
    key = (vendor_id, buyer_id, status, is_slipping(slip_days))
    return Counter([(*key, ORDER, ORDER)] + [(*key, code, severity) for code, severity in alerts])


def open_alerts(order_ids: Sequence[int]) -> OpenAlerts:
    """The open alerts of these orders (orders without any: absent). One query."""
    found: OpenAlerts = defaultdict(list)
    for order_id, code, severity in (
        SlipAlert.objects.filter(open_alert_q(), order_id__in=order_ids)
        .order_by()
        .values_list("order_id", "code", "severity")
    ):
        found[order_id].append((code, severity))
    return found


def parts(order_ids: Sequence[int], *, lock: bool) -> dict[int, Counter[Key]]:
    """Each order's part from what it stores now (for `ORDERS.refresh`). With `lock`, the
    orders' rows are locked first (FOR NO KEY UPDATE), and their alerts read after: two
    writers of one order then apply their differences one after the other, each from what
    the other committed. Two queries."""
    orders = PurchaseOrder.objects.filter(pk__in=order_ids).order_by("pk")
    if lock:
        orders = orders.select_for_update(no_key=True)
    rows = list(orders.values_list("pk", "vendor_id", "buyer_id", "status", "slip_days"))
    alerts = open_alerts(order_ids)
    return {
        pk: order_part(
            vendor_id=vendor_id,
            buyer_id=buyer_id,
            status=status,
            slip_days=slip_days,
            alerts=alerts.get(pk, ()),
        )
        for pk, vendor_id, buyer_id, status, slip_days in rows
    }


def has_open_alert(part: Counter[Key]) -> bool:
    """Whether the order whose part this is has an open alert."""
    return any(key[4] != ORDER for key in part)


def refresh(order_ids: Iterable[int], *, orders_locked: bool = False) -> int:
    """Bring these orders' part of the tally up to date; returns how many changed. Call it in
    the transaction of the write. `orders_locked`: the caller has locked the orders' rows in
    this transaction already."""
    changed = 0
    with transaction.atomic():
        for chunk in chunks(sorted(set(order_ids)), CHUNK):
            changed += ORDERS.refresh(parts(chunk, lock=not orders_locked))
    return changed


def drift(order_ids: Iterable[int] | None = None, *, fix: bool = False) -> tuple[int, int]:
    """(orders whose part is not what they added, tally rows that are not the sum of what the
    orders added): all orders, or these (the tally's rows only for all). With fix=True both
    are set right."""
    return drift_of_orders(
        order_ids,
        stale=lambda chunk: ORDERS.changes(parts(chunk, lock=False)),
        refresh=refresh,
        tally_drift=lambda fix: ORDERS.drift(fix=fix, chunk_size=CHUNK),
        fix=fix,
        chunk_size=CHUNK,
    )


def forget(order_ids: Iterable[int]) -> None:
    """Take these orders out of the tally (they are being deleted)."""
    ORDERS.forget(order_ids, chunk_size=CHUNK)


# --- Readers ----------------------------------------------------------------------------------


def _counters(
    *,
    vendor_id: int | None = None,
    buyer_id: int | None = None,
    statuses: Collection[str] | None = None,
    slipping: bool | None = None,
) -> Q:
    """The tally's rows of the orders with these values (None: any)."""
    where = Q()
    if vendor_id is not None:
        where &= Q(vendor_pk=vendor_id)
    if buyer_id is not None:
        where &= Q(buyer_pk=buyer_id)
    if statuses is not None:
        where &= Q(status__in=list(statuses))
    if slipping is not None:
        where &= Q(slipping=slipping)
    return where


def order_count(
    *,
    vendor_id: int | None = None,
    buyer_id: int | None = None,
    statuses: Collection[str] | None = None,
    slipping: bool | None = None,
) -> int:
    """How many orders have these values (None: any), of every order. One query."""
    where = _counters(vendor_id=vendor_id, buyer_id=buyer_id, statuses=statuses, slipping=slipping)
    total = OrderTally.objects.filter(where, code=ORDER).aggregate(n=Sum("n"))["n"]
    return total or 0


def open_alert_counts(
    *,
    vendor_id: int | None = None,
    buyer_id: int | None = None,
    statuses: Collection[str] | None = None,
) -> list[tuple[str, str, int]]:
    """(code, severity, open alerts) of the orders with these values (None: any), of every
    order; codes without one left out. One query."""
    where = _counters(vendor_id=vendor_id, buyer_id=buyer_id, statuses=statuses)
    return list(
        OrderTally.objects.filter(where)
        .exclude(code=ORDER)
        .values_list("code", "severity")
        .annotate(total=Sum("n"))
        .filter(total__gt=0)
        .order_by()
    )
