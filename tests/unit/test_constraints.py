"""Every invariant, with a bad value: validation names the field (and the value), the database
refuses the row when validation is bypassed, and nothing is saved."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

import pytest
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.db import IntegrityError, connection, models, transaction

from orders import db_triggers, services
from orders.models import Delivery, DeliveryQuote, GpuModel, OrderLine, PurchaseOrder, Vendor
from tests.factories import (
    GpuModelFactory,
    OrderLineFactory,
    PurchaseOrderFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db

PLACED = date(2023, 4, 14)


@dataclass
class World:
    order: PurchaseOrder
    line: OrderLine
    other_line: OrderLine


@pytest.fixture
def world() -> World:
    line = OrderLineFactory(order=PurchaseOrderFactory(placed_on=PLACED), quantity=8)
    other_line = OrderLineFactory(gpu_model=GpuModelFactory(name="H100 SXM"))
    return World(order=line.order, line=line, other_line=other_line)


@dataclass
class NewRow:
    """A new row that breaks a rule."""

    id: str
    build: Callable[[World], models.Model]
    field: str
    says: str  # a fragment the validation message must contain


def _received(w: World, quantity: int) -> None:
    services.delivery_record(line=w.line, quantity=quantity, delivered_on=date(2023, 5, 1))


def _quote(w: World, **kw: object) -> DeliveryQuote:
    fields = {"order": w.order, "quoted_on": PLACED, "delivery_date": date(2023, 5, 15)} | kw
    return DeliveryQuote(**fields)


NEW_ROWS = [
    NewRow(
        "line quantity 0",
        lambda w: OrderLine(
            order=w.order,
            gpu_model=GpuModelFactory(name="A10"),
            quantity=0,
            unit_price=Decimal("1"),
        ),
        "quantity",
        "not 0",
    ),
    NewRow(
        "line negative price",
        lambda w: OrderLine(
            order=w.order,
            gpu_model=GpuModelFactory(name="A10"),
            quantity=1,
            unit_price=Decimal("-0.01"),
        ),
        "unit_price",
        "-0.01",
    ),
    NewRow(
        "second line for the same GPU model",
        lambda w: OrderLine(
            order=w.order, gpu_model=w.line.gpu_model, quantity=1, unit_price=Decimal("1")
        ),
        NON_FIELD_ERRORS,
        "already has a line for that GPU model",
    ),
    NewRow(
        "need_by before placed_on",
        lambda w: PurchaseOrder(
            po_number="PO-BAD",
            vendor=w.order.vendor,
            buyer=w.order.buyer,
            placed_on=PLACED,
            need_by=date(2023, 4, 13),
            currency="USD",
        ),
        "need_by",
        "2023-04-13",
    ),
    NewRow(
        "currency not an ISO code",
        lambda w: PurchaseOrder(
            po_number="PO-BAD",
            vendor=w.order.vendor,
            buyer=w.order.buyer,
            placed_on=PLACED,
            currency="usd",
        ),
        "currency",
        "ISO 4217",
    ),
    NewRow(
        "duplicate PO number",
        lambda w: PurchaseOrder(
            po_number=w.order.po_number,
            vendor=w.order.vendor,
            buyer=w.order.buyer,
            placed_on=PLACED,
            currency="USD",
        ),
        "po_number",
        "already exists",
    ),
    NewRow(
        "buyer without email",
        lambda w: PurchaseOrder(
            po_number="PO-BAD",
            vendor=w.order.vendor,
            placed_on=PLACED,
            buyer=UserFactory(username="noemail", email=""),
            currency="USD",
            need_by=date(2023, 1, 1),
        ),
        "buyer",
        "no email",
    ),
    NewRow(
        "vendor name differing only in case",
        lambda w: Vendor(name=w.order.vendor.name.upper(), kind=Vendor.Kind.OEM),
        NON_FIELD_ERRORS,
        "already exists",
    ),
    NewRow(
        "GPU memory 0",
        lambda w: GpuModel(name="Z1", memory_gb=0),
        "memory_gb",
        "not 0",
    ),
    NewRow(
        "quote quoted before the order was placed",
        lambda w: _quote(w, quoted_on=date(2023, 4, 13)),
        "quoted_on",
        "2023-04-13",
    ),
    NewRow(
        "quote due before the order was placed",
        lambda w: _quote(w, delivery_date=date(2023, 4, 10), quoted_on=date(2023, 4, 10)),
        "delivery_date",
        "2023-04-10",
    ),
    NewRow(
        "quote due before it was quoted",
        lambda w: _quote(w, quoted_on=date(2023, 5, 2), delivery_date=date(2023, 5, 1)),
        "delivery_date",
        "2023-05-01",
    ),
    NewRow(
        "quote for a line of another order",
        lambda w: _quote(w, line=w.other_line),
        "line",
        "another order",
    ),
    NewRow(
        "receipt of 0 GPUs",
        lambda w: Delivery(order=w.order, line=w.line, quantity=0, delivered_on=date(2023, 5, 1)),
        "quantity",
        "not 0",
    ),
    NewRow(
        "receipt of more than ordered",
        lambda w: Delivery(order=w.order, line=w.line, quantity=9, delivered_on=date(2023, 5, 1)),
        "quantity",
        "exceed the 8 ordered",
    ),
    NewRow(
        "receipts adding up to more than ordered",
        lambda w: (
            _received(w, 5),
            Delivery(order=w.order, line=w.line, quantity=4, delivered_on=date(2023, 5, 2)),
        )[1],
        "quantity",
        "5 already received",
    ),
    NewRow(
        "receipt before the order was placed",
        lambda w: Delivery(order=w.order, line=w.line, quantity=1, delivered_on=date(2023, 4, 1)),
        "delivered_on",
        "2023-04-01",
    ),
    NewRow(
        "receipt on a line of another order",
        lambda w: Delivery(
            order=w.order, line=w.other_line, quantity=1, delivered_on=date(2023, 5, 1)
        ),
        "line",
        "another order",
    ),
]


@pytest.mark.parametrize("case", NEW_ROWS, ids=lambda c: c.id)
def test_bad_new_row_fails_validation_and_the_database_refuses_it(
    world: World, case: NewRow
) -> None:
    row = case.build(world)
    model = type(row)
    before = model.objects.count()

    with pytest.raises(ValidationError) as excinfo:
        row.full_clean()
    messages = excinfo.value.message_dict
    assert case.field in messages, messages
    assert any(case.says in m for m in messages[case.field]), messages

    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()  # no full_clean: only the database stands in the way

    assert model.objects.count() == before


@dataclass
class Change:
    """A change to an existing row that breaks a rule."""

    id: str
    target: Callable[[World], models.Model]
    field: str
    value: Callable[[World], object]
    says: str


def _existing_quote(w: World) -> DeliveryQuote:
    return services.quote_add(order=w.order, quoted_on=PLACED, delivery_date=date(2023, 5, 15))


def _line_with_receipt(w: World) -> OrderLine:
    _received(w, 6)
    return OrderLine.objects.get(pk=w.line.pk)


CHANGES = [
    Change(
        "placed_on moved after a quote",
        lambda w: (_existing_quote(w), PurchaseOrder.objects.get(pk=w.order.pk))[1],
        "placed_on",
        lambda w: date(2023, 4, 20),
        "2023-04-20",
    ),
    Change(
        "placed_on moved after a receipt",
        lambda w: (_received(w, 1), PurchaseOrder.objects.get(pk=w.order.pk))[1],
        "placed_on",
        lambda w: date(2023, 5, 2),
        "2023-05-02",
    ),
    Change(
        "line quantity below what was received",
        _line_with_receipt,
        "quantity",
        lambda w: 5,
        "6 already received",
    ),
    Change(
        "quote's delivery date edited in place",
        _existing_quote,
        "delivery_date",
        lambda w: date(2023, 6, 1),
        "cannot be changed",
    ),
    Change(
        "quote's quoted_on edited in place",
        _existing_quote,
        "quoted_on",
        lambda w: date(2023, 4, 15),
        "cannot be changed",
    ),
]


@pytest.mark.parametrize("case", CHANGES, ids=lambda c: c.id)
def test_bad_change_fails_validation_and_the_database_refuses_it(
    world: World, case: Change
) -> None:
    row = case.target(world)
    original = getattr(row, case.field)
    setattr(row, case.field, case.value(world))

    with pytest.raises(ValidationError) as excinfo:
        row.full_clean()
    flat = " ".join(m for ms in excinfo.value.message_dict.values() for m in ms)
    assert case.says in flat, excinfo.value.message_dict

    with pytest.raises(IntegrityError), transaction.atomic():
        row.save()

    row.refresh_from_db()
    assert getattr(row, case.field) == original


def test_a_quote_note_may_be_amended_but_not_its_dates(world: World) -> None:
    quote = _existing_quote(world)
    quote.note = "Vendor confirmed by phone"
    quote.full_clean()
    quote.save()
    quote.refresh_from_db()
    assert quote.note == "Vendor confirmed by phone"


def test_every_guard_trigger_is_installed() -> None:
    assert db_triggers.trigger_names(connection.vendor) <= db_triggers.installed(connection)


def test_bulk_create_cannot_sneak_past_the_triggers(world: World) -> None:
    with pytest.raises(IntegrityError), transaction.atomic():
        DeliveryQuote.objects.bulk_create([_quote(world, quoted_on=date(2023, 1, 1))])
    assert not DeliveryQuote.objects.exists()


def test_valid_rows_pass_both_layers(world: World) -> None:
    quote = services.quote_add(
        order=world.order, line=world.line, quoted_on=PLACED, delivery_date=PLACED
    )
    assert quote.pk
    delivery = services.delivery_record(line=world.line, quantity=8, delivered_on=PLACED)
    assert delivery.order == world.order
    vendor = VendorFactory.build(name="Unique Vendor")
    vendor.full_clean()
