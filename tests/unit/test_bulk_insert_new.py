"""orders.bulk.insert_new: COPY on PostgreSQL, bulk_create elsewhere, the same result."""

from datetime import date

import pytest
from django.db import IntegrityError, transaction

from orders.bulk import insert_new
from orders.models import DeliveryQuote, OrderLine, PurchaseOrder, Vendor
from tests.factories import GpuModelFactory, PurchaseOrderFactory, UserFactory

pytestmark = pytest.mark.django_db

D = date.fromisoformat


def test_insert_new_saves_parents_then_children_with_ids_and_timestamps() -> None:
    vendor, buyer, gpu = Vendor(name="Northwind", kind="oem"), UserFactory(), GpuModelFactory()
    orders = [
        PurchaseOrder(po_number=f"PO-{i}", vendor=vendor, buyer=buyer, placed_on=D("2023-04-14"))
        for i in range(3)
    ]
    lines = [OrderLine(order=o, gpu_model=gpu, quantity=8, unit_price=10000) for o in orders]

    insert_new([vendor])
    insert_new(orders)
    insert_new(lines)

    assert all(o.pk and not o._state.adding for o in [*orders, *lines])
    assert {o.vendor_id for o in orders} == {vendor.pk}
    saved = PurchaseOrder.objects.filter(vendor=vendor).order_by("po_number")
    assert [(o.pk, o.po_number, o.lines.get().pk) for o in saved] == [
        (o.pk, o.po_number, line.pk) for o, line in zip(orders, lines, strict=True)
    ]
    assert all(o.created_at and o.updated_at for o in saved)
    # The ORM carries on after the ids insert_new took.
    assert PurchaseOrderFactory(vendor=vendor).pk > max(o.pk for o in orders)


def test_insert_new_is_checked_by_the_database_triggers() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    early = DeliveryQuote(order=order, quoted_on=D("2023-01-01"), delivery_date=D("2023-05-01"))
    with pytest.raises(IntegrityError), transaction.atomic():
        insert_new([early])
    assert not DeliveryQuote.objects.exists()
