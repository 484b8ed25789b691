"""The vendor scorecards' tally (orders.models.tallies.VendorScoreTally): every order's
figures summed per vendor and slip, so a scorecard reads a few hundred counters whatever the
number of orders.

`order_score` defines what an order adds. `refresh(order_ids)` is the one write path, run
in the caller's transaction: it computes the orders' scores from what they store now (the
stored schedule, lines, receipts, open alerts), compares them with what they added last
(OrderScore) and adds the difference to the tally. It runs from `orders.schedules.refresh`
(quotes, lines, an order's status, vendor or dates) and from the receipt signals below;
`open_alerts_refresh`, its short form for writes that change only alerts, from the
slip-alert signals, the slip scan and acknowledgements; it keeps the dashboard's open-alert
tally too (orders.order_tally). `drift()` finds what anything else
(raw SQL, QuerySet.update) left stale; `manage.py check_schedules --fix` repairs it.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import Any

from django.db import connection, transaction
from django.db.models import Max, Sum
from django.db.models.signals import post_delete, post_save
from django.dispatch import receiver

from orders import bulk, order_tally
from orders.bulk import chunks
from orders.dates import as_date
from orders.models import (
    Delivery,
    OrderLine,
    OrderScore,
    PurchaseOrder,
    SlipAlert,
    VendorScoreTally,
    open_alert_q,
)
from orders.tally import drift_of_orders

CHUNK = 2000
# What a score counts, in the order of the tally's columns.
COUNTS = ("orders", "units", "received", "on_time", "on_time_latest", "requotes", "open_alerts")
ScoreKey = tuple[int, bool, int]  # vendor pk, quoted, slip days (0 when not quoted)
_ZERO = (0,) * len(COUNTS)


@dataclass(frozen=True)
class Score:
    """What one order adds to its vendor's scorecard."""

    key: ScoreKey
    counts: tuple[int, ...] = _ZERO


def order_score(
    *,
    vendor_id: int,
    status: str,
    baseline: date | None,
    current: date | None,
    slip_days: int | None,
    requotes: int,
    units: int,
    received_on: date | None,
    open_alert: bool,
) -> Score:
    """An order's part of its vendor's scorecard (orders.scorecards says what each figure
    means): nothing for a draft, which no vendor has seen yet; received when it is received
    and has receipts, on time when its last receipt came by the first (latest) quoted date."""
    key = (vendor_id, slip_days is not None, slip_days or 0)
    if status == PurchaseOrder.Status.DRAFT:
        return Score(key)
    last = received_on if status == PurchaseOrder.Status.RECEIVED else None
    received = last is not None
    on_time = last is not None and baseline is not None and last <= baseline
    on_time_latest = last is not None and current is not None and last <= current
    return Score(
        key,
        (1, units, int(received), int(on_time), int(on_time_latest), requotes, int(open_alert)),
    )


def _computed(order_ids: Sequence[int]) -> dict[int, Score]:
    """Each order's score from what it stores now: four queries."""
    units = dict(
        OrderLine.objects.filter(order_id__in=order_ids)
        .order_by()
        .values("order_id")
        .annotate(units=Sum("quantity"))
        .values_list("order_id", "units")
    )
    received_on = dict(
        Delivery.objects.filter(order_id__in=order_ids)
        .order_by()
        .values("order_id")
        .annotate(last=Max("delivered_on"))
        .values_list("order_id", "last")
    )
    alerted = set(
        SlipAlert.objects.filter(open_alert_q(), order_id__in=order_ids)
        .order_by()
        .values_list("order_id", flat=True)
        .distinct()
    )
    return {
        pk: order_score(
            vendor_id=vendor_id,
            status=status,
            baseline=baseline,
            current=current,
            slip_days=slip_days,
            requotes=requotes,
            units=units.get(pk) or 0,
            received_on=as_date(received_on.get(pk)),
            open_alert=pk in alerted,
        )
        for pk, vendor_id, status, baseline, current, slip_days, requotes in (
            PurchaseOrder.objects.filter(pk__in=order_ids)
            .order_by()
            .values_list(
                "pk",
                "vendor_id",
                "status",
                "baseline_delivery_date",
                "current_delivery_date",
                "slip_days",
                "requote_count",
            )
        )
    }


def _added(order_ids: Sequence[int], *, lock: bool = False) -> dict[int, Score]:
    """What these orders last added to the tally; with `lock`, their OrderScore rows are
    locked until the transaction ends (`open_alerts_refresh` changes them without reading
    them first)."""
    rows = OrderScore.objects.filter(order_id__in=order_ids).order_by("order_id")
    if lock:
        rows = rows.select_for_update()
    return {
        pk: Score((vendor_pk, quoted, slip_days), tuple(counts))
        for pk, vendor_pk, quoted, slip_days, *counts in rows.values_list(
            "order_id", "vendor_pk", "quoted", "slip_days", *COUNTS
        )
    }


def _stale(
    order_ids: Sequence[int], *, lock: bool = False
) -> list[tuple[int, Score, Score | None]]:
    """(order pk, its score now, what it added before) where the two differ."""
    added = _added(order_ids, lock=lock)
    return [
        (pk, score, added.get(pk))
        for pk, score in _computed(order_ids).items()
        if added.get(pk) != score
    ]


def add_to_tally(delta: dict[ScoreKey, list[int]]) -> None:
    """Add these counts (negative ones subtract) to VendorScoreTally, in one statement."""
    bulk.add_counts(
        VendorScoreTally,
        keys=("vendor_pk", "quoted", "slip_days"),
        counts=COUNTS,
        rows=[(*key, *counts) for key, counts in delta.items() if any(counts)],
    )


def score_difference(
    changes: Iterable[tuple[Score, Score | None]],
) -> dict[ScoreKey, list[int]]:
    """What to add to the tally for (score now, score added before) pairs: each new score's
    counts under its key, less each old one's under its own."""
    delta: dict[ScoreKey, list[int]] = defaultdict(lambda: [0] * len(COUNTS))
    for score, added in changes:
        for i, n in enumerate(score.counts):
            delta[score.key][i] += n
        if added is not None:
            for i, n in enumerate(added.counts):
                delta[added.key][i] -= n
    return delta


def score_row(order_id: int, score: Score) -> OrderScore:
    """The OrderScore that records `score` as what the order added."""
    vendor_pk, quoted, slip_days = score.key
    return OrderScore(
        order_id=order_id,
        vendor_pk=vendor_pk,
        quoted=quoted,
        slip_days=slip_days,
        **dict(zip(COUNTS, score.counts, strict=True)),
    )


def _write(changes: Sequence[tuple[int, Score, Score | None]]) -> int:
    if not changes:
        return 0
    add_to_tally(score_difference((score, added) for _, score, added in changes))
    OrderScore.objects.bulk_create(
        [score_row(pk, score) for pk, score, _ in changes],
        update_conflicts=True,
        unique_fields=["order"],
        update_fields=["vendor_pk", "quoted", "slip_days", *COUNTS],
    )
    return len(changes)


def lock_orders(order_ids: Sequence[int]) -> None:
    """Lock these orders' rows until the transaction ends, in pk order (FOR NO KEY UPDATE,
    which a transaction writing a quote, line or alert of the order does not wait for). Every
    tally writer locks the orders first, then the orders' records, then the tallies'
    counters (the lead times', the scorecards', the order tally's, in that order), so two
    writers never wait for each other in opposite orders."""
    locked = PurchaseOrder.objects.filter(pk__in=order_ids).order_by("pk")
    list(locked.select_for_update(no_key=True).values_list("pk", flat=True))


def refresh(order_ids: Iterable[int], *, orders_locked: bool = False) -> int:
    """Bring these orders' part of the tally up to date; returns how many changed. Call it
    in the transaction of the write (after the stored schedule is written). The orders' rows
    are locked (FOR NO KEY UPDATE) so that two writers of one order apply their differences
    one after the other; `orders_locked`: the caller (orders.schedules.refresh) has locked
    them in this transaction already."""
    ids = sorted(set(order_ids))
    if not ids:
        return 0
    changed = 0
    with transaction.atomic():
        for chunk in chunks(ids, CHUNK):
            if not orders_locked:
                lock_orders(chunk)
            changed += _write(_stale(chunk, lock=True))
    return changed


def open_alerts_refresh(order_ids: Iterable[int]) -> int:
    """`refresh` for writes that change only which orders have open alerts (the scan,
    acknowledgements, alerts saved or deleted): the orders' open-alert counts set from their
    alerts, the tally changed by the ones that flipped, then the order tally brought up to
    date (orders.order_tally). At most eight statements per chunk, none reading the
    schedule; returns how many orders flipped. The orders are locked first (FOR NO KEY
    UPDATE, as `lock_orders`); each UPDATE reports the rows it changed (RETURNING:
    PostgreSQL, SQLite 3.35+)."""
    ids = sorted(set(order_ids))
    if not ids:
        return 0
    table = connection.ops.quote_name(OrderScore._meta.db_table)
    flipped = 0
    with transaction.atomic(), connection.cursor() as cursor:
        for chunk in chunks(ids, CHUNK):
            # Reading the orders' parts locks the orders (before the scores, as every writer
            # does), then reads their alerts.
            parts = order_tally.parts(chunk, lock=True)
            alerted = {pk for pk, part in parts.items() if order_tally.has_open_alert(part)}
            delta: dict[ScoreKey, list[int]] = defaultdict(lambda: [0] * len(COUNTS))
            # A draft counts nothing (orders = 0), an open alert included.
            for value, change, members in (
                (1, 1, sorted(alerted)),
                (0, -1, [pk for pk in chunk if pk not in alerted]),
            ):
                if not members:
                    continue
                cursor.execute(
                    f"UPDATE {table} SET open_alerts = %s WHERE order_id IN "
                    f"({', '.join(['%s'] * len(members))}) AND open_alerts <> %s "
                    f"AND (orders = 1 OR %s = 0) RETURNING vendor_pk, quoted, slip_days",
                    [value, *members, value, value],
                )
                for vendor_pk, quoted, slip_days in cursor.fetchall():
                    delta[(vendor_pk, bool(quoted), slip_days)][-1] += change
                    flipped += 1
            add_to_tally(delta)
            order_tally.ORDERS.refresh(parts)
    return flipped


def forget(order_ids: Iterable[int]) -> None:
    """Take these orders out of the tally (they are being deleted)."""
    with transaction.atomic():
        for chunk in chunks(sorted(set(order_ids)), CHUNK):
            added = _added(chunk).values()
            add_to_tally(score_difference((Score(score.key), score) for score in added))
            OrderScore.objects.filter(order_id__in=chunk).delete()


def drift(order_ids: Iterable[int] | None = None, *, fix: bool = False) -> tuple[int, int]:
    """(orders whose score is not what they added, tally rows that are not the sum of what
    the orders added): all orders, or these (the tally's rows only for all). With fix=True
    both are set right."""
    return drift_of_orders(
        order_ids,
        stale=_stale,
        refresh=refresh,
        tally_drift=_tally_drift,
        fix=fix,
        chunk_size=CHUNK,
    )


def _tally_drift(*, fix: bool) -> int:
    expected: dict[ScoreKey, list[int]] = defaultdict(lambda: [0] * len(COUNTS))
    for vendor_pk, quoted, slip_days, *counts in OrderScore.objects.values_list(
        "vendor_pk", "quoted", "slip_days", *COUNTS
    ).iterator(CHUNK):
        row = expected[(vendor_pk, quoted, slip_days)]
        for i, n in enumerate(counts):
            row[i] += n
    stored = {
        (vendor_pk, quoted, slip_days): list(counts)
        for vendor_pk, quoted, slip_days, *counts in VendorScoreTally.objects.values_list(
            "vendor_pk", "quoted", "slip_days", *COUNTS
        )
    }
    zero = [0] * len(COUNTS)
    stale = [
        key
        for key in expected.keys() | stored.keys()
        if expected.get(key, zero) != stored.get(key, zero)
    ]
    if fix and stale:
        with transaction.atomic():
            add_to_tally(
                {
                    key: [
                        e - s
                        for e, s in zip(expected.get(key, zero), stored.get(key, zero), strict=True)
                    ]
                    for key in stale
                }
            )
    return len(stale)


# --- Single-row ORM writes --------------------------------------------------------------------


@receiver(post_save, sender=Delivery, dispatch_uid="vendor_tally_after_receipt")
@receiver(post_save, sender=SlipAlert, dispatch_uid="vendor_tally_after_alert")
def _after_save(instance: Delivery | SlipAlert, raw: bool = False, **_: Any) -> None:
    if raw:  # loaddata: fixtures carry their tallies
        return
    if isinstance(instance, SlipAlert):
        open_alerts_refresh([instance.order_id])
    else:
        refresh([instance.order_id])


@receiver(post_delete, sender=Delivery, dispatch_uid="vendor_tally_after_receipt_delete")
@receiver(post_delete, sender=SlipAlert, dispatch_uid="vendor_tally_after_alert_delete")
def _after_delete(instance: Delivery | SlipAlert, origin: Any = None, **_: Any) -> None:
    # Deleting an order deletes its receipts and alerts first: the order has taken its
    # score back already (orders.schedules), and must not add it again on its way out.
    deleted = origin if isinstance(origin, type) else getattr(origin, "model", type(origin))
    if deleted is PurchaseOrder:
        return
    if isinstance(instance, SlipAlert):
        open_alerts_refresh([instance.order_id])
    else:
        refresh([instance.order_id])
