"""The stored schedule: the columns of orders and lines (orders.models.procurement
.StoredSchedule) kept equal to `orders.slips.order_figures` of their quote history.

`refresh(order_ids)` is the one write path. It runs in the caller's transaction, so the
columns change in the same commit as the quote, line or order that changed them:

- single-row ORM writes (a quote, a line, an order's placed-on date saved or deleted, from
  the admin, a service or a test) reach it through the model signals connected below; a
  line saved under another order refreshes the order it left too;
- bulk writes, which send no signals, call it with the orders they wrote
  (services.quotes_add_bulk, the orders import);
- anything else (raw SQL, QuerySet.update) is found by `drift()` and repaired by
  `manage.py check_schedules --fix`, which is `refresh()` again.

The same pass keeps the lead-time tally (orders.models.tallies) current: each order's counts
(`orders.slips.lead_time_counts`) are compared with what it added last, and the difference is
added to the tally (orders.tally.KeyedTally); then the vendor scorecards' tally
(orders.vendor_tally) and the order tally (orders.order_tally) are brought up
to date from the columns just written. A deleted order takes its part of each back (`forget`).

Not a database trigger: a trigger would spell the rule again in SQL, once per database, beside
the Python that the scan, the tests and the property test use; here the rule has one
definition. The cost is a fixed number of queries per chunk of orders (four reads, at most
four writes), whatever the number of quotes.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import astuple, dataclass
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_delete, pre_save
from django.dispatch import receiver

from orders import order_tally, vendor_tally
from orders.bulk import chunks, update_rows
from orders.dates import as_date
from orders.models import (
    DeliveryQuote,
    LeadTimeTally,
    OrderLeadTimes,
    OrderLine,
    PurchaseOrder,
)
from orders.slips import (
    FIGURES,
    LeadTimeKey,
    OrderFigures,
    Quote,
    lead_time_counts,
    order_figures,
)
from orders.tally import Change, KeyedTally, every_order_id

CHUNK = 2000  # orders per round of reads and writes
_ORDER_COLUMNS = [*FIGURES, "current_quote"]


@dataclass(frozen=True)
class Drift:
    """Rows whose stored schedule differs from their history (found, and fixed if asked)."""

    orders: int = 0
    lines: int = 0
    order_ids: tuple[int, ...] = ()  # of the orders concerned, at most a few for reporting
    lead_time_orders: int = 0  # orders whose lead-time counts are not what they added
    lead_time_keys: int = 0  # tally counters that are not the sum of what orders added
    score_orders: int = 0  # the same for the vendor scorecards' tally (orders.vendor_tally)
    score_keys: int = 0
    tally_orders: int = 0  # the same for the order tally (orders.order_tally)
    tally_keys: int = 0


@dataclass(frozen=True)
class _Computed:
    figures: dict[int, OrderFigures]
    lead_times: dict[int, Counter[LeadTimeKey]]


def _computed(order_ids: Sequence[int], *, lock: bool = False) -> _Computed:
    """The schedule and lead-time counts of each order from its history: three queries.

    With `lock`, the orders' rows are locked first (FOR NO KEY UPDATE, which a transaction
    that writes a quote or line of the order does not wait for): two writers of one order
    then apply their lead-time differences one after the other, never both from one base."""
    orders = PurchaseOrder.objects.filter(pk__in=order_ids).order_by("pk")
    if lock:
        orders = orders.select_for_update(no_key=True)
    facts = {
        pk: (placed_on, vendor_id)
        for pk, placed_on, vendor_id in orders.values_list("pk", "placed_on", "vendor_id")
    }
    lines: dict[int, dict[int, int]] = defaultdict(dict)
    for order_id, line_id, gpu_model_id in (
        OrderLine.objects.filter(order_id__in=order_ids)
        .order_by()
        .values_list("order_id", "pk", "gpu_model_id")
    ):
        lines[order_id][line_id] = gpu_model_id
    quotes: dict[int, list[Quote]] = defaultdict(list)
    for pk, order_id, line_id, quoted_on, delivery_date in (
        DeliveryQuote.objects.filter(order_id__in=order_ids)
        .order_by()
        .values_list("pk", "order_id", "line_id", "quoted_on", "delivery_date")
    ):
        quotes[order_id].append(Quote(pk, quoted_on, delivery_date, line_id))
    return _Computed(
        figures={
            order_id: order_figures(placed_on, quotes[order_id], lines[order_id])
            for order_id, (placed_on, _) in facts.items()
        },
        lead_times={
            order_id: lead_time_counts(placed_on, vendor_id, quotes[order_id], lines[order_id])
            for order_id, (placed_on, vendor_id) in facts.items()
        },
    )


def _stored(order_ids: Sequence[int]) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """What the orders and their lines store now, as tuples comparable with `_row`'s."""
    orders = {
        pk: (*(as_date(v) for v in values[:-1]), values[-1])
        for pk, *values in PurchaseOrder.objects.filter(pk__in=order_ids).values_list(
            "pk", *FIGURES, "current_quote_id"
        )
    }
    lines = {
        pk: tuple(as_date(v) for v in values)
        for pk, *values in OrderLine.objects.filter(order_id__in=order_ids).values_list(
            "pk", *FIGURES
        )
    }
    return orders, lines


@dataclass(frozen=True)
class _Differences:
    orders: list[tuple[Any, ...]]  # (pk, *columns) to write
    lines: list[tuple[Any, ...]]
    lead_times: list[Change]  # where the counts differ from what the order added


def _differences(order_ids: Sequence[int], *, lock: bool = False) -> _Differences:
    """What is stale in the stored schedule and the lead-time counts of these orders."""
    computed = _computed(order_ids, lock=lock)
    stored_orders, stored_lines = _stored(order_ids)
    orders, lines = [], []
    for order_id, plan in computed.figures.items():
        row = (*astuple(plan.order), plan.current_quote_id)
        if stored_orders.get(order_id) != row:
            orders.append((order_id, *row))
        for line_id, figures in plan.lines.items():
            line_row = astuple(figures)
            if stored_lines.get(line_id) != line_row:
                lines.append((line_id, *line_row))
    return _Differences(orders, lines, LEAD_TIMES.changes(computed.lead_times))


def refresh(order_ids: Iterable[int]) -> int:
    """Write the schedule of these orders and their lines, and their lead-time counts, where
    they differ from their history; returns how many rows changed. Call it inside the
    transaction of the write."""
    changed = 0
    with transaction.atomic():
        for chunk in chunks(sorted(set(order_ids)), CHUNK):
            stale = _differences(chunk, lock=True)
            changed += update_rows(OrderLine, FIGURES, stale.lines)
            changed += update_rows(PurchaseOrder, _ORDER_COLUMNS, stale.orders)
            changed += LEAD_TIMES.write(stale.lead_times)
            # After the columns it reads are written: the vendor scorecards' tally.
            changed += vendor_tally.refresh(chunk, orders_locked=True)
            changed += order_tally.refresh(chunk, orders_locked=True)
    return changed


def drift(order_ids: Iterable[int] | None = None, *, fix: bool = False) -> Drift:
    """Orders and lines whose stored schedule or lead-time counts differ from their history
    (all orders, or these), chunk by chunk; with fix=True each chunk is rewritten as it is
    found. For all orders, the lead-time tally is also checked against the sum of what the
    orders added (and set to it with fix=True); then the same for the vendor scorecards'
    tally (orders.vendor_tally.drift) and the order tally (orders.order_tally.drift)."""
    every_order = order_ids is None
    # Given ids are read more than once: here and by the other tallies' drift.
    order_ids = every_order_id(CHUNK) if order_ids is None else list(order_ids)
    n_orders = n_lines = n_lead_times = 0
    examples: list[int] = []
    for chunk in chunks(order_ids, CHUNK):
        stale = _differences(chunk)
        n_orders, n_lines = n_orders + len(stale.orders), n_lines + len(stale.lines)
        n_lead_times += len(stale.lead_times)
        found = sorted({row[0] for row in stale.orders} | {row[0] for row in stale.lead_times})
        examples.extend(found[: 10 - len(examples)])
        if fix and (stale.orders or stale.lines or stale.lead_times):
            refresh(chunk)  # read again in its own transaction: a writer may have been first
    keys = LEAD_TIMES.drift(fix=fix, chunk_size=CHUNK) if every_order else 0
    # After the schedules are fixed: the scores are worked out from them.
    scores, score_keys = vendor_tally.drift(None if every_order else order_ids, fix=fix)
    parts, part_keys = order_tally.drift(None if every_order else order_ids, fix=fix)
    return Drift(
        n_orders,
        n_lines,
        tuple(examples),
        n_lead_times,
        keys,
        scores,
        score_keys,
        parts,
        part_keys,
    )


# --- The lead-time tally ------------------------------------------------------------------------


def _lead_time_key(values: Sequence[Any]) -> LeadTimeKey:
    month, vendor_pk, gpu_model_pk, lead_days = values
    return as_date(month), vendor_pk, gpu_model_pk, lead_days


def _lead_time_json(key: LeadTimeKey) -> list[Any]:
    month, *rest = key
    return [month.isoformat(), *rest]


# What each order added to LeadTimeTally is in OrderLeadTimes: [month ISO, vendor pk, GPU
# model pk, lead days, quotes] rows.
LEAD_TIMES = KeyedTally(
    LeadTimeTally,
    keys=("month", "vendor_pk", "gpu_model_pk", "lead_days"),
    count="quotes",
    added=OrderLeadTimes,
    decode=_lead_time_key,
    encode=_lead_time_json,
)


def forget(order_ids: Iterable[int]) -> None:
    """Take these orders out of the tallies (they are being deleted)."""
    order_ids = list(order_ids)
    LEAD_TIMES.forget(order_ids, chunk_size=CHUNK)
    vendor_tally.forget(order_ids)
    order_tally.forget(order_ids)


# --- Single-row ORM writes --------------------------------------------------------------------


@receiver(pre_save, sender=OrderLine, dispatch_uid="schedule_before_line")
def _before_line_save(
    instance: OrderLine,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **_: Any,
) -> None:
    # A line moved to another order (the line admin's order field) leaves an order whose
    # schedule changes too: remember it for _after_save.
    left = None
    moving = update_fields is None or not {"order", "order_id"}.isdisjoint(update_fields)
    if not raw and instance.pk is not None and moving:
        left = (
            OrderLine.objects.filter(pk=instance.pk)
            .exclude(order_id=instance.order_id)
            .values_list("order_id", flat=True)
            .first()
        )
    instance._schedule_left_order_id = left  # type: ignore[attr-defined]


@receiver(post_save, sender=DeliveryQuote, dispatch_uid="schedule_after_quote")
@receiver(post_save, sender=OrderLine, dispatch_uid="schedule_after_line")
def _after_save(instance: DeliveryQuote | OrderLine, raw: bool = False, **_: Any) -> None:
    left = instance.__dict__.pop("_schedule_left_order_id", None)
    if not raw:  # loaddata: fixtures carry their columns
        refresh([instance.order_id] if left is None else [instance.order_id, left])


@receiver(post_save, sender=PurchaseOrder, dispatch_uid="schedule_after_order")
def _after_order_save(
    instance: PurchaseOrder,
    created: bool,
    raw: bool = False,
    update_fields: frozenset[str] | None = None,
    **_: Any,
) -> None:
    # Of an order's own columns only placed_on (lead times), the vendor (the tallies' key),
    # the status (the scorecards, the order tally) and the buyer (the order tally's key)
    # count; a new order counts on its vendor's scorecard and in the order tally.
    counted = {"placed_on", "vendor", "vendor_id", "status", "buyer", "buyer_id"}
    if raw or (update_fields is not None and counted.isdisjoint(update_fields)):
        return
    refresh([instance.pk])


@receiver(pre_delete, sender=PurchaseOrder, dispatch_uid="schedule_before_order_delete")
def _before_order_delete(instance: PurchaseOrder, **_: Any) -> None:
    forget([instance.pk])


@receiver(post_delete, sender=DeliveryQuote, dispatch_uid="schedule_after_quote_delete")
@receiver(post_delete, sender=OrderLine, dispatch_uid="schedule_after_line_delete")
def _after_delete(instance: DeliveryQuote | OrderLine, origin: Any = None, **_: Any) -> None:
    # `origin`: what was asked to be deleted. Deleting an order deletes its lines and quotes,
    # leaving nothing to refresh. Deleting a line deletes its quotes too, in no set order
    # (Django deletes the line first: the quote's line is nullable), so each of them
    # refreshes the order, and the last signal sees them all gone.
    deleted = origin if isinstance(origin, type) else getattr(origin, "model", type(origin))
    if deleted is PurchaseOrder:
        return
    refresh([instance.order_id])
