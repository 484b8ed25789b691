"""State changes. Every new quote and every receipt goes through these functions, whether it
comes from the admin, an import, the demo loader or a test, so the rules are applied once."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from decimal import Decimal

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.db.models import Sum

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
    quote.save()
    if check:
        orders_check_after_commit(order_ids=[order.pk])
    return quote


def orders_check_after_commit(*, order_ids: Iterable[int]) -> None:
    """Queue a slip check of each order once the current transaction commits (so the worker
    sees the new rows)."""
    from orders.tasks import check_order

    for order_id in sorted(set(order_ids)):
        transaction.on_commit(lambda order_id=order_id: check_order.delay(order_id))


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
    delivery.save()
    order_sync_status_with_receipts(order=locked.order)
    return delivery


@transaction.atomic
def delivery_remove(*, delivery: Delivery) -> None:
    """Undo a receipt recorded by mistake; the order's status follows."""
    order = delivery.line.order
    delivery.delete()
    order_sync_status_with_receipts(order=order)


def order_sync_status_with_receipts(*, order: PurchaseOrder) -> PurchaseOrder:
    """Set received / partially received from what has arrived. Drafts and cancelled orders
    keep their status: a receipt does not un-cancel an order."""
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


def prices_check_after_commit() -> None:
    from orders.tasks import check_prices

    transaction.on_commit(check_prices.delay)
