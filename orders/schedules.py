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

Not a database trigger: a trigger would spell the rule again in SQL, once per database, beside
the Python that the scan, the tests and the property test use; here the rule has one
definition. The cost is a fixed number of queries per chunk of orders (three reads, at most
two writes), whatever the number of quotes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import astuple, dataclass
from datetime import date
from itertools import islice
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.dispatch import receiver

from orders.bulk import update_rows
from orders.models import DeliveryQuote, OrderLine, PurchaseOrder
from orders.slips import FIGURES, OrderFigures, Quote, order_figures

CHUNK = 2000  # orders per round of reads and writes
_ORDER_COLUMNS = [*FIGURES, "current_quote"]


@dataclass(frozen=True)
class Drift:
    """Rows whose stored schedule differs from their history (found, and fixed if asked)."""

    orders: int = 0
    lines: int = 0
    order_ids: tuple[int, ...] = ()  # of the orders concerned, at most a few for reporting


def _chunks(ids: Iterable[int]) -> Iterator[list[int]]:
    ids = iter(ids)
    while chunk := list(islice(ids, CHUNK)):
        yield chunk


def _as_date(value: Any) -> date | None:
    # SQLite hands back computed and JSON-written dates as text.
    return date.fromisoformat(value) if isinstance(value, str) else value


def _computed(order_ids: Sequence[int]) -> dict[int, OrderFigures]:
    """The schedule of each order from its history: three queries."""
    placed = dict(PurchaseOrder.objects.filter(pk__in=order_ids).values_list("pk", "placed_on"))
    lines: dict[int, list[int]] = defaultdict(list)
    for order_id, line_id in (
        OrderLine.objects.filter(order_id__in=order_ids).order_by().values_list("order_id", "pk")
    ):
        lines[order_id].append(line_id)
    quotes: dict[int, list[Quote]] = defaultdict(list)
    for pk, order_id, line_id, quoted_on, delivery_date in (
        DeliveryQuote.objects.filter(order_id__in=order_ids)
        .order_by()
        .values_list("pk", "order_id", "line_id", "quoted_on", "delivery_date")
    ):
        quotes[order_id].append(Quote(pk, quoted_on, delivery_date, line_id))
    return {
        order_id: order_figures(placed_on, quotes[order_id], lines[order_id])
        for order_id, placed_on in placed.items()
    }


def _stored(order_ids: Sequence[int]) -> tuple[dict[int, tuple], dict[int, tuple]]:
    """What the orders and their lines store now, as tuples comparable with `_row`'s."""
    orders = {
        pk: (*(_clean(v) for v in values[:-1]), values[-1])
        for pk, *values in PurchaseOrder.objects.filter(pk__in=order_ids).values_list(
            "pk", *FIGURES, "current_quote_id"
        )
    }
    lines = {
        pk: tuple(_clean(v) for v in values)
        for pk, *values in OrderLine.objects.filter(order_id__in=order_ids).values_list(
            "pk", *FIGURES
        )
    }
    return orders, lines


def _clean(value: Any) -> Any:
    return _as_date(value) if isinstance(value, str) else value


def _differences(
    order_ids: Sequence[int],
) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    """Rows to write, (pk, *columns), for the orders and lines whose columns are stale."""
    computed = _computed(order_ids)
    stored_orders, stored_lines = _stored(order_ids)
    orders, lines = [], []
    for order_id, plan in computed.items():
        row = (*astuple(plan.order), plan.current_quote_id)
        if stored_orders.get(order_id) != row:
            orders.append((order_id, *row))
        for line_id, figures in plan.lines.items():
            line_row = astuple(figures)
            if stored_lines.get(line_id) != line_row:
                lines.append((line_id, *line_row))
    return orders, lines


def refresh(order_ids: Iterable[int]) -> int:
    """Write the schedule of these orders and their lines where it differs from their
    history; returns how many rows changed. Call it inside the transaction of the write."""
    changed = 0
    with transaction.atomic():
        for chunk in _chunks(sorted(set(order_ids))):
            orders, lines = _differences(chunk)
            changed += update_rows(OrderLine, FIGURES, lines)
            changed += update_rows(PurchaseOrder, _ORDER_COLUMNS, orders)
    return changed


def drift(order_ids: Iterable[int] | None = None, *, fix: bool = False) -> Drift:
    """Orders and lines whose stored schedule differs from their history (all orders, or
    these), chunk by chunk; with fix=True each chunk is rewritten as it is found."""
    if order_ids is None:
        order_ids = (
            PurchaseOrder.objects.order_by("pk")
            .values_list("pk", flat=True)
            .iterator(chunk_size=CHUNK)
        )
    n_orders = n_lines = 0
    examples: list[int] = []
    for chunk in _chunks(order_ids):
        orders, lines = _differences(chunk)
        n_orders, n_lines = n_orders + len(orders), n_lines + len(lines)
        stale = sorted({row[0] for row in orders})
        examples.extend(stale[: 10 - len(examples)])
        if fix and (orders or lines):
            refresh(chunk)  # read again in its own transaction: a writer may have been first
    return Drift(n_orders, n_lines, tuple(examples))


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
    # A new order has no quotes yet; of an order's own columns only placed_on counts.
    if raw or created or (update_fields is not None and "placed_on" not in update_fields):
        return
    refresh([instance.pk])


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
