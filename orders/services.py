"""State changes. Every new quote and every receipt goes through these functions, whether it
comes from the admin, an import, the demo loader or a test, so the rules are applied once."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Sum
from django.utils import timezone

from orders import bulk, history, schedules
from orders.bulk import insert_ignoring_conflicts
from orders.dates import today
from orders.models import (
    Delivery,
    DeliveryQuote,
    GpuModel,
    OrderLine,
    PriceQuote,
    PurchaseOrder,
    Vendor,
)

Status = PurchaseOrder.Status


@transaction.atomic
def quote_add(
    *,
    order: PurchaseOrder,
    delivery_date: date,
    quoted_on: date | None = None,
    line: OrderLine | None = None,
    note: str = "",
    source: str = "",
    recorded_by: AbstractBaseUser | None = None,
    check: bool = True,
) -> DeliveryQuote:
    """Append a delivery date the vendor quoted; validated, never overwriting an earlier one.

    Once the transaction commits, the order is re-judged by the slip rules (a Celery task), so
    the buyer hears within a minute. Bulk loaders pass check=False and call
    `orders_check_after_commit` once per order instead of once per quote."""
    quote = DeliveryQuote(
        order=order,
        line=line,
        quoted_on=quoted_on or today(),
        delivery_date=delivery_date,
        note=note.strip(),
        source=source.strip(),
        recorded_by=recorded_by,
    )
    quote.full_clean()
    history.attribute_to(quote, recorded_by)
    quote.save()
    if check:
        orders_check_after_commit(order_ids=[order.pk])
    return quote


# Foreign keys are enforced by the database; validating them in Python costs a query each.
_QUOTE_FOREIGN_KEYS = ("order", "line", "recorded_by")


def quote_validate(*, quote: DeliveryQuote) -> None:
    """Check an unsaved quote against the model's field rules and `clean()` without a query
    per quote (so a bulk loader can call it for every row). Foreign keys, the unique and the
    CHECK constraints are left to `quotes_add_bulk`'s set-based check and to the database."""
    quote.full_clean(exclude=_QUOTE_FOREIGN_KEYS, validate_unique=False, validate_constraints=False)


@transaction.atomic
def quotes_add_bulk(
    *, quotes: Sequence[DeliveryQuote], check: bool = True, batch_size: int = 1000
) -> list[DeliveryQuote]:
    """Append many quotes in a fixed number of queries per batch: each validated by the same
    model rules as `quote_add`, none a duplicate of a recorded quote or of another in the list.

    Raises ValidationError naming every bad quote, and then saves none. The orders' stored
    schedules are refreshed in the same transaction (orders.schedules). Once the transaction
    commits, each order concerned is re-judged by the slip rules, as after `quote_add`."""
    errors: list[str] = []
    for number, quote in enumerate(quotes, start=1):
        for parent in ("order", "line"):
            # Built before its order or line was saved, a quote holds the object but not yet
            # its id: assigning it again picks the id up.
            if getattr(quote, f"{parent}_id") is None and getattr(quote, parent, None):
                setattr(quote, parent, getattr(quote, parent))
        quote.note, quote.source = quote.note.strip(), quote.source.strip()
        if quote.quoted_on is None:
            quote.quoted_on = today()
        if quote.order_id is None:
            errors.append(f"Quote {number}: its order is not saved.")
            continue
        try:
            quote_validate(quote=quote)
        except ValidationError as exc:
            errors.extend(f"Quote {number} ({quote.order}): {m}" for m in exc.messages)
    seen = _quote_keys_recorded(order_ids={q.order_id for q in quotes if q.order_id})
    for number, quote in enumerate(quotes, start=1):
        key = (quote.order_id, quote.line_id, quote.quoted_on, quote.delivery_date)
        if key in seen:
            errors.append(
                f"Quote {number} ({quote.order}): quoted {quote.quoted_on} for "
                f"{quote.delivery_date} is already recorded."
            )
        seen.add(key)
    if errors:
        raise ValidationError(errors)
    bulk.insert_new(quotes, batch_size=batch_size)
    schedules.refresh(q.order_id for q in quotes)  # bulk inserts send no signals
    if check:
        orders_check_after_commit(order_ids=[q.order_id for q in quotes])
    return list(quotes)


def _quote_keys_recorded(*, order_ids: set[int]) -> set[tuple]:
    """(order, line, quoted_on, delivery_date) of every quote the given orders have."""
    ids, keys = sorted(order_ids), set()
    for start in range(0, len(ids), 2000):  # bounded IN lists: PostgreSQL and SQLite cap them
        keys.update(
            DeliveryQuote.objects.filter(order_id__in=ids[start : start + 2000]).values_list(
                "order_id", "line_id", "quoted_on", "delivery_date"
            )
        )
    return keys


def orders_check_after_commit(*, order_ids: Iterable[int]) -> None:
    """Queue a slip check of the orders once the current transaction commits (so the worker
    sees the new rows): one task per batch of orders, so a bulk import of 100,000 orders
    queues 50 tasks, not 100,000."""
    from orders.tasks import check_orders, queue_after_commit

    ids, size = sorted(set(order_ids)), settings.SLIP_SCAN_BATCH_SIZE
    for chunk in (ids[start : start + size] for start in range(0, len(ids), size)):
        queue_after_commit(check_orders, chunk, otherwise="the daily scan will judge these orders.")


@transaction.atomic
def delivery_record(
    *,
    line: OrderLine,
    quantity: int,
    delivered_on: date | None = None,
    note: str = "",
    recorded_by: AbstractBaseUser | None = None,
) -> Delivery:
    """Record GPUs that arrived on a line and move the order's status along with receipts."""
    # Lock the line so two receipts recorded at once cannot both pass the over-receipt check.
    locked = OrderLine.objects.select_for_update().select_related("order").get(pk=line.pk)
    delivery = Delivery(
        order=locked.order,
        line=locked,
        quantity=quantity,
        delivered_on=delivered_on or today(),
        note=note.strip(),
        recorded_by=recorded_by,
    )
    delivery.full_clean()
    history.attribute_to(delivery, recorded_by)
    delivery.save()
    order_sync_status_with_receipts(order=locked.order)
    return delivery


@transaction.atomic
def delivery_remove(*, delivery: Delivery, removed_by: AbstractBaseUser | None = None) -> None:
    """Undo a receipt recorded by mistake; the order's status follows."""
    order = delivery.line.order
    history.attribute_to(delivery, removed_by)
    delivery.delete()
    order_sync_status_with_receipts(order=order)


def order_sync_status_with_receipts(*, order: PurchaseOrder) -> PurchaseOrder:
    """Set received / partially received from what has arrived. Drafts and cancelled orders
    keep their status: a receipt does not un-cancel an order. A change of status queues a
    slip check of the order once the transaction commits, as a new quote does."""
    if order.status in (Status.DRAFT, Status.CANCELLED):
        return order
    # Two aggregates: one join over lines and deliveries would count a line once per receipt.
    ordered = OrderLine.objects.filter(order=order).aggregate(n=Sum("quantity"))["n"] or 0
    received = Delivery.objects.filter(order=order).aggregate(n=Sum("quantity"))["n"] or 0
    if ordered and received >= ordered:
        new_status = Status.RECEIVED
    elif received:
        new_status = Status.PARTIALLY_RECEIVED
    elif order.status in (Status.RECEIVED, Status.PARTIALLY_RECEIVED):
        new_status = Status.CONFIRMED
    else:
        new_status = order.status
    if new_status != order.status:
        order.status = new_status
        order.save(update_fields=["status", "updated_at"])
        # Received (or back to open): its alerts are re-judged, resolved or reopened.
        orders_check_after_commit(order_ids=[order.pk])
    return order


@transaction.atomic
def price_quote_add(
    *,
    vendor: Vendor,
    gpu_model: GpuModel,
    unit_price: Decimal,
    quoted_on: date,
    currency: str = "USD",
    source: str = PriceQuote.Source.MANUAL,
    note: str = "",
    check: bool = True,
) -> PriceQuote:
    """Record a price a vendor quoted. Once committed, price histories are re-judged (a
    Celery task), so a price rise reaches buyers the same day. Bulk loaders pass check=False
    and call `prices_check_after_commit()` once."""
    price = PriceQuote(
        vendor=vendor,
        gpu_model=gpu_model,
        unit_price=unit_price,
        currency=currency.strip().upper(),
        quoted_on=quoted_on,
        source=source,
        note=note.strip(),
    )
    price.full_clean()
    price.save()
    if check:
        prices_check_after_commit()
    return price


@transaction.atomic
def prices_add_bulk(*, prices: Sequence[PriceQuote]) -> int:
    """Record many validated prices in one statement (a price recorded meanwhile is skipped:
    it is the same fact), then re-judge price histories once after commit."""
    added = insert_ignoring_conflicts(
        PriceQuote,
        columns=("vendor_id", "gpu_model_id", "unit_price", "currency", "quoted_on", "note"),
        rows=[
            (p.vendor_id, p.gpu_model_id, p.unit_price, p.currency, p.quoted_on, p.note)
            for p in prices
        ],
        constants={"source": PriceQuote.Source.IMPORT, "created_at": timezone.now()},
    )
    if added:
        prices_check_after_commit()
    return len(added)


def prices_check_after_commit() -> None:
    from orders.tasks import check_prices, queue_after_commit

    queue_after_commit(check_prices, otherwise="the daily scan will judge the prices.")
