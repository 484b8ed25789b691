"""Drift cannot hide: whatever sequence of writes the app makes, every order's and line's
stored schedule equals `orders.slips.order_figures` of its history, after every step.

The steps are the app's writers: quotes recorded through the service one at a time and in
bulk (whole-order and line quotes), lines added, edited and deleted, receipts recorded and
removed, CSV imports of orders (new orders, new lines of recorded orders, whole-order quotes)
and of quotes, saves of the admin's forms (the order page with its lines, quotes and receipts
inlines, the line page, which can move a line to another order, the quote page), an order's
placed-on date changed, an order's vendor, buyer and status and a line's GPU model changed,
quotes and orders deleted, slip scans and alerts acknowledged. After each one, three checks:
`schedules.drift()` finds no order, no line and no counter, and this module's own
recomputation reads every order's history and compares the columns, the lead-time tally, the
scorecards' tally and the order tally itself, so a `drift()` gone blind could
not hide a stale column or counter.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import DatabaseError, transaction
from django.test import Client
from django.urls import reverse
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from orders import alerts, csv_format, schedules, services
from orders.imports import orders_import, quotes_import
from orders.models import (
    Delivery,
    DeliveryQuote,
    GpuModel,
    OrderLine,
    PurchaseOrder,
    SlipAlert,
    open_alert_q,
)
from orders.slips import FIGURES, Figures
from tests.csv_files import ORDER_HEADER, csv_file
from tests.factories import GpuModelFactory, UserFactory, VendorFactory
from tests.schedules import (
    recomputed,
    recomputed_lead_times,
    recomputed_order_tally,
    recomputed_scores,
    stored_lead_times,
    stored_order_tally,
    stored_scores,
)
from tests.unit.test_admin import _add_inline_row, _form_data

pytestmark = pytest.mark.django_db

START = date(2023, 4, 3)
GPUS = ("A100 80GB SXM", "H100 SXM", "L40S 48GB")
NEW_GPU = "B200 192GB"  # no line has it until an orders import creates it
PRICE = "100.00"


# --- Steps -------------------------------------------------------------------------------------
# Indexes pick among what exists when the step runs (modulo its count), so any list of steps
# is a valid test; a write the rules refuse is a step that changes nothing.


@dataclass(frozen=True)
class QuoteSpec:
    order: int
    line: int | None  # among the order's lines; None: the whole order
    quoted: int  # days after the order was placed
    wait: int  # delivery, days after quoted


@dataclass(frozen=True)
class QuoteOne:
    """services.quote_add"""

    quote: QuoteSpec


@dataclass(frozen=True)
class QuoteBulk:
    """services.quotes_add_bulk"""

    quotes: tuple[QuoteSpec, ...]


@dataclass(frozen=True)
class NewOrder:
    placed: int  # days after START


@dataclass(frozen=True)
class AddLine:
    order: int
    gpu: int
    quantity: int


@dataclass(frozen=True)
class EditLine:
    line: int
    quantity: int
    only_quantity: bool  # save(update_fields=["quantity"])


@dataclass(frozen=True)
class DeleteLine:
    line: int


@dataclass(frozen=True)
class DeleteQuote:
    quote: int


@dataclass(frozen=True)
class Receipt:
    """services.delivery_record"""

    line: int
    quantity: int
    day: int  # after the order was placed


@dataclass(frozen=True)
class RemoveReceipt:
    """services.delivery_remove"""

    receipt: int


@dataclass(frozen=True)
class MovePlacedOn:
    order: int
    days: int
    update_fields: bool  # save(update_fields=["placed_on"]) rather than a full save


@dataclass(frozen=True)
class ChangeVendor:
    order: int
    update_fields: bool  # save(update_fields=["vendor"]) rather than a full save


@dataclass(frozen=True)
class ChangeBuyer:
    order: int
    update_fields: bool  # save(update_fields=["buyer"]) rather than a full save


@dataclass(frozen=True)
class ChangeStatus:
    """An order cancelled, confirmed or put back to draft, as the admin's status field does"""

    order: int
    status: str
    update_fields: bool  # save(update_fields=["status"]) rather than a full save


@dataclass(frozen=True)
class ChangeGpu:
    line: int
    gpu: int
    update_fields: bool  # save(update_fields=["gpu_model"]) rather than a full save


@dataclass(frozen=True)
class DeleteOrder:
    order: int


@dataclass(frozen=True)
class Scan:
    """alerts.scan_orders, as the daily task runs it: alerts open, are superseded, resolve"""

    day: int  # after START


@dataclass(frozen=True)
class Acknowledge:
    """alerts.alerts_acknowledge, as the admin's action calls it"""

    alert: int


@dataclass(frozen=True)
class ImportRow:
    order: int | None  # None: a new PO (PO-IMP-0 or -1, by `gpu` parity)
    gpu: int  # among GPUS and NEW_GPU
    quantity: int
    quote: tuple[int, int] | None  # (quoted, wait) of a whole-order quote


@dataclass(frozen=True)
class ImportOrders:
    """orders.imports.orders_import, as the admin's import page calls it"""

    rows: tuple[ImportRow, ...]


@dataclass(frozen=True)
class ImportQuotes:
    """orders.imports.quotes_import"""

    quotes: tuple[QuoteSpec, ...]


@dataclass(frozen=True)
class AdminOrder:
    """One POST of the order's admin change form, with what its inlines may add or change."""

    order: int
    days: int  # placed-on moved by this much (0: unchanged)
    quantity: int | None  # of its first line
    new_line: int | None  # GPU of a line added
    delete_line: int | None  # among its lines
    quote: QuoteSpec | None  # added in the quotes inline (its `order` is ignored)
    receipt: tuple[int, int] | None  # (line, quantity), received on the day it was placed


@dataclass(frozen=True)
class AdminLine:
    """The order line's admin change form: its order and quantity."""

    line: int
    order: int
    quantity: int


@dataclass(frozen=True)
class AdminQuote:
    """The delivery quote's admin add form."""

    quote: QuoteSpec


Step = (
    QuoteOne
    | QuoteBulk
    | NewOrder
    | AddLine
    | EditLine
    | DeleteLine
    | DeleteQuote
    | Receipt
    | RemoveReceipt
    | MovePlacedOn
    | ChangeVendor
    | ChangeBuyer
    | ChangeStatus
    | ChangeGpu
    | DeleteOrder
    | Scan
    | Acknowledge
    | ImportOrders
    | ImportQuotes
    | AdminOrder
    | AdminLine
    | AdminQuote
)

_index = st.integers(0, 7)
_quote_spec = st.builds(
    QuoteSpec,
    order=_index,
    line=st.none() | _index,
    quoted=st.integers(0, 60),
    wait=st.integers(0, 240),
)
_quotes = st.lists(_quote_spec, min_size=1, max_size=4).map(tuple)
_quantity = st.integers(1, 16)
_import_row = st.builds(
    ImportRow,
    order=st.none() | _index,
    gpu=st.integers(0, len(GPUS)),
    quantity=_quantity,
    quote=st.none() | st.tuples(st.integers(0, 60), st.integers(0, 240)),
)
STEPS: st.SearchStrategy[Step] = st.one_of(
    st.builds(QuoteOne, _quote_spec),
    st.builds(QuoteBulk, _quotes),
    st.builds(NewOrder, st.integers(0, 20)),
    st.builds(AddLine, _index, st.integers(0, len(GPUS) - 1), _quantity),
    st.builds(EditLine, _index, _quantity, st.booleans()),
    st.builds(DeleteLine, _index),
    st.builds(DeleteQuote, _index),
    st.builds(Receipt, _index, st.integers(1, 4), st.integers(0, 90)),
    st.builds(RemoveReceipt, _index),
    st.builds(MovePlacedOn, _index, st.integers(-10, 10), st.booleans()),
    st.builds(ChangeVendor, _index, st.booleans()),
    st.builds(ChangeBuyer, _index, st.booleans()),
    st.builds(
        ChangeStatus,
        _index,
        st.sampled_from([s.value for s in PurchaseOrder.Status]),
        st.booleans(),
    ),
    st.builds(ChangeGpu, _index, st.integers(0, len(GPUS) - 1), st.booleans()),
    st.builds(DeleteOrder, _index),
    st.builds(Scan, st.integers(0, 200)),
    st.builds(Acknowledge, _index),
    st.builds(ImportOrders, st.lists(_import_row, min_size=1, max_size=3).map(tuple)),
    st.builds(ImportQuotes, _quotes),
    st.builds(
        AdminOrder,
        order=_index,
        days=st.integers(-5, 5),
        quantity=st.none() | _quantity,
        new_line=st.none() | st.integers(0, len(GPUS) - 1),
        delete_line=st.none() | _index,
        quote=st.none() | _quote_spec,
        receipt=st.none() | st.tuples(_index, st.integers(1, 4)),
    ),
    st.builds(AdminLine, _index, _index, _quantity),
    st.builds(AdminQuote, _quote_spec),
)


# --- The world the steps act on ----------------------------------------------------------------


@dataclass
class World:
    client: Client
    vendor: Any
    other_vendor: Any
    buyer: Any
    other_buyer: Any
    gpus: list[GpuModel]


@pytest.fixture
def world(admin_client_logged_in: Client) -> World:
    """What every example shares (not rolled back between examples): a vendor, a buyer, the
    GPU models and a superuser's admin session."""
    return World(
        client=admin_client_logged_in,
        vendor=VendorFactory(name="Pacific Silicon Distribution"),
        other_vendor=VendorFactory(name="Northwind Servers"),
        buyer=UserFactory(username="alice", email="alice@gpu-buyers.example"),
        other_buyer=UserFactory(username="bob", email="bob@gpu-buyers.example"),
        gpus=[GpuModelFactory(name=name, memory_gb=80) for name in GPUS],
    )


def _pick(items: list[Any], index: int | None) -> Any:
    return None if index is None or not items else items[index % len(items)]


def _orders() -> list[PurchaseOrder]:
    return list(PurchaseOrder.objects.select_related("vendor", "buyer").order_by("pk"))


def _lines(order: PurchaseOrder | None = None) -> list[OrderLine]:
    lines = OrderLine.objects.select_related("order", "gpu_model").order_by("pk")
    return list(lines if order is None else lines.filter(order=order))


def _quote_dates(order: PurchaseOrder, spec: QuoteSpec | tuple[int, int]) -> tuple[date, date]:
    quoted, wait = (spec.quoted, spec.wait) if isinstance(spec, QuoteSpec) else spec
    quoted_on = order.placed_on + timedelta(days=quoted)
    return quoted_on, quoted_on + timedelta(days=wait)


def _quote(spec: QuoteSpec, order: PurchaseOrder | None = None) -> DeliveryQuote | None:
    """The unsaved quote a spec describes, or None when there is no order to quote."""
    order = order or _pick(_orders(), spec.order)
    if order is None:
        return None
    quoted_on, delivery_date = _quote_dates(order, spec)
    line = _pick(_lines(order), spec.line)
    return DeliveryQuote(
        order=order, line=line, quoted_on=quoted_on, delivery_date=delivery_date, source="test"
    )


@contextmanager
def _refusable() -> Iterator[None]:
    """A write the rules refuse (a model error, a constraint or a trigger) changes nothing:
    its savepoint is rolled back, as the caller's transaction would be in the app."""
    try:
        with transaction.atomic():
            yield
    except (ValidationError, DatabaseError):
        pass


def _post(client: Client, url: str, data: dict[str, Any]) -> None:
    response = client.post(url, data)
    # 302: saved; 200: the form shows what the rules refused, and nothing was saved.
    assert response.status_code in (200, 302), response.status_code


def _import_cells(
    row: ImportRow, orders: list[PurchaseOrder], world: World, first: dict[tuple, int]
) -> dict[str, str]:
    """A row of an orders file; `first` keeps the quantity of each new line the file names,
    so that its other rows agree with it (a file that contradicts itself imports nothing)."""
    gpu = (*GPUS, NEW_GPU)[row.gpu]
    order = _pick(orders, row.order)
    if order is None:
        new = row.gpu % 2
        po, placed = f"PO-IMP-{new}", START + timedelta(days=7 * new)
        vendor, email, currency = world.vendor.name, world.buyer.email, "USD"
        line = None
    else:
        po, placed = order.po_number, order.placed_on
        vendor, email, currency = order.vendor.name, order.buyer.email, order.currency
        line = next((li for li in _lines(order) if li.gpu_model.name == gpu), None)
    cells = {
        "po_number": po,
        "vendor": vendor,
        "buyer_email": email,
        "gpu_model": gpu,
        # A recorded line as recorded: an import adds lines, it does not change them.
        "quantity": str(line.quantity if line else first.setdefault((po, gpu), row.quantity)),
        "unit_price": str(line.unit_price if line else PRICE),
        "currency": currency,
        "placed_on": placed.isoformat(),
    }
    if row.quote is not None:
        quoted = placed + timedelta(days=row.quote[0])
        cells["quoted_on"] = quoted.isoformat()
        cells["delivery_date"] = (quoted + timedelta(days=row.quote[1])).isoformat()
    return cells


def _run(step: Step, world: World) -> None:
    """Make the write a step describes, through the path the app uses for it."""
    orders, lines = _orders(), _lines()
    client = world.client
    with _refusable():
        match step:
            case QuoteOne(spec):
                if (quote := _quote(spec)) is not None:
                    services.quote_add(
                        order=quote.order,
                        line=quote.line,
                        quoted_on=quote.quoted_on,
                        delivery_date=quote.delivery_date,
                    )
            case QuoteBulk(specs):
                quotes = [q for spec in specs if (q := _quote(spec)) is not None]
                services.quotes_add_bulk(quotes=quotes)
            case NewOrder(placed):
                PurchaseOrder.objects.create(
                    po_number=f"PO-P-{len(orders)}",
                    vendor=world.vendor,
                    buyer=world.buyer,
                    placed_on=START + timedelta(days=placed),
                )
            case AddLine(order, gpu, quantity):
                if (target := _pick(orders, order)) is not None:
                    line = OrderLine(
                        order=target,
                        gpu_model=world.gpus[gpu],
                        quantity=quantity,
                        unit_price=Decimal(PRICE),
                    )
                    line.full_clean()
                    line.save()
            case EditLine(line, quantity, only_quantity):
                if (target := _pick(lines, line)) is not None:
                    target.quantity = quantity
                    target.full_clean()
                    target.save(update_fields=["quantity"] if only_quantity else None)
            case DeleteLine(line):
                if (target := _pick(lines, line)) is not None:
                    target.delete()
            case DeleteQuote(quote):
                quotes = list(DeliveryQuote.objects.order_by("pk"))
                if (target := _pick(quotes, quote)) is not None:
                    target.delete()
            case Receipt(line, quantity, day):
                if (target := _pick(lines, line)) is not None:
                    services.delivery_record(
                        line=target,
                        quantity=quantity,
                        delivered_on=target.order.placed_on + timedelta(days=day),
                    )
            case RemoveReceipt(receipt):
                receipts = list(Delivery.objects.order_by("pk"))
                if (target := _pick(receipts, receipt)) is not None:
                    services.delivery_remove(delivery=target)
            case MovePlacedOn(order, days, update_fields):
                if (target := _pick(orders, order)) is not None:
                    target.placed_on += timedelta(days=days)
                    target.full_clean()
                    target.save(update_fields=["placed_on"] if update_fields else None)
            case ChangeVendor(order, update_fields):
                if (target := _pick(orders, order)) is not None:
                    target.vendor = (
                        world.other_vendor if target.vendor_id == world.vendor.pk else world.vendor
                    )
                    target.save(update_fields=["vendor"] if update_fields else None)
            case ChangeBuyer(order, update_fields):
                if (target := _pick(orders, order)) is not None:
                    target.buyer = (
                        world.other_buyer if target.buyer_id == world.buyer.pk else world.buyer
                    )
                    target.save(update_fields=["buyer"] if update_fields else None)
            case ChangeStatus(order, status, update_fields):
                if (target := _pick(orders, order)) is not None:
                    target.status = status
                    target.save(update_fields=["status"] if update_fields else None)
            case ChangeGpu(line, gpu, update_fields):
                if (target := _pick(lines, line)) is not None:
                    target.gpu_model = world.gpus[gpu]
                    target.save(update_fields=["gpu_model"] if update_fields else None)
            case DeleteOrder(order):
                if (target := _pick(orders, order)) is not None:
                    target.delete()
            case Scan(day):
                alerts.scan_orders(today=START + timedelta(days=day))
            case Acknowledge(alert):
                open_alerts = list(SlipAlert.objects.filter(open_alert_q()).order_by("pk"))
                if (target := _pick(open_alerts, alert)) is not None:
                    alerts.alerts_acknowledge(alert_ids=[target.pk], user=world.buyer)
            case ImportOrders(rows):
                first: dict[tuple, int] = {}
                cells = [_import_cells(row, orders, world, first) for row in rows]
                orders_import(content=csv_file(cells, ORDER_HEADER), user=world.buyer)
            case ImportQuotes(specs):
                rows = []
                for spec in specs:
                    if (quote := _quote(spec)) is not None:
                        rows.append(
                            {
                                "po_number": quote.order.po_number,
                                "quoted_on": quote.quoted_on.isoformat(),
                                "delivery_date": quote.delivery_date.isoformat(),
                                "gpu_model": quote.line.gpu_model.name if quote.line else "",
                            }
                        )
                quotes_import(content=csv_file(rows, csv_format.QUOTE_COLUMNS))
            case AdminOrder():
                _admin_order(step, orders, world)
            case AdminLine(line, order, quantity):
                target, to = _pick(lines, line), _pick(orders, order)
                if target is not None:
                    url = reverse("admin:orders_orderline_change", args=[target.pk])
                    data = _form_data(client.get(url))
                    data |= {"order": to.pk, "quantity": quantity}
                    _post(client, url, data)
            case AdminQuote(spec):
                if (quote := _quote(spec)) is not None:
                    url = reverse("admin:orders_deliveryquote_add")
                    data = _form_data(client.get(url))
                    data |= {
                        "order": quote.order.pk,
                        "line": quote.line.pk if quote.line else "",
                        "quoted_on": quote.quoted_on.isoformat(),
                        "delivery_date": quote.delivery_date.isoformat(),
                    }
                    _post(client, url, data)


def _admin_order(step: AdminOrder, orders: list[PurchaseOrder], world: World) -> None:
    order = _pick(orders, step.order)
    if order is None:
        return
    url = reverse("admin:orders_purchaseorder_change", args=[order.pk])
    data = _form_data(world.client.get(url))
    placed_on = order.placed_on + timedelta(days=step.days)
    data["placed_on"] = placed_on.isoformat()
    lines = _lines(order)  # the inline's rows, in the inline's order (by id)
    if step.quantity is not None and lines:
        data["lines-0-quantity"] = step.quantity
    deleted = _pick(lines, step.delete_line)
    if deleted is not None:
        data[f"lines-{lines.index(deleted)}-DELETE"] = "on"
    if step.new_line is not None:
        gpu = world.gpus[step.new_line]
        _add_inline_row(data, "lines", gpu_model=gpu.pk, quantity=2, unit_price=PRICE)
    if step.quote is not None:
        quoted_on = placed_on + timedelta(days=step.quote.quoted)
        line = _pick(lines, step.quote.line)
        _add_inline_row(
            data,
            "quotes",
            quoted_on=quoted_on.isoformat(),
            delivery_date=(quoted_on + timedelta(days=step.quote.wait)).isoformat(),
            line=line.pk if line else "",
        )
    received = _pick(lines, step.receipt[0]) if step.receipt is not None else None
    # Not on a line the same POST deletes: the admin answers that with a 500 (the receipt is
    # recorded after the line is gone), which is not the stored schedule's concern.
    if step.receipt is not None and received is not None and received != deleted:
        _add_inline_row(
            data,
            "deliveries",
            line=received.pk,
            quantity=step.receipt[1],
            delivered_on=placed_on.isoformat(),
        )
    _post(world.client, url, data)


# --- The checks ----------------------------------------------------------------------------------


def _stored(row: PurchaseOrder | OrderLine) -> Figures:
    return Figures(**{name: getattr(row, name) for name in FIGURES})


def _assert_every_schedule_matches_its_history(after: list[Step]) -> None:
    """drift() finds nothing, and each row's columns are order_figures of its history as
    read here."""
    assert schedules.drift() == schedules.Drift(), after
    assert stored_lead_times() == recomputed_lead_times(), after
    assert stored_scores() == recomputed_scores(), after
    assert stored_order_tally() == recomputed_order_tally(), after
    for order in PurchaseOrder.objects.order_by("pk"):
        expected = recomputed(order)
        lines = {line.pk: line for line in OrderLine.objects.filter(order=order)}
        where = f"{order.po_number} after {after}"
        assert (_stored(order), order.current_quote_id) == (
            expected.order,
            expected.current_quote_id,
        ), where
        assert {pk: _stored(line) for pk, line in lines.items()} == expected.lines, where


def _start(world: World) -> None:
    """Two orders: one with a line, one without."""
    first, second = (
        PurchaseOrder.objects.create(
            po_number=f"PO-START-{n}", vendor=world.vendor, buyer=world.buyer, placed_on=START
        )
        for n in (1, 2)
    )
    OrderLine.objects.create(
        order=first, gpu_model=world.gpus[0], quantity=8, unit_price=Decimal(PRICE)
    )
    assert second.pk


# Each writer at least once, whatever the random examples draw; each example is one the
# mutation checks of the issue ("Drift cannot hide") watched go red.
_q = QuoteSpec


@settings(
    max_examples=40,
    deadline=None,
    # Shared fixtures are safe: each example rolls back its own writes.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    print_blob=True,
)
@given(steps=st.lists(STEPS, min_size=1, max_size=10))
@example(steps=[QuoteOne(_q(0, None, 0, 30)), QuoteOne(_q(0, 0, 10, 60))])
@example(steps=[QuoteBulk((_q(0, None, 0, 30), _q(1, None, 1, 40), _q(0, 0, 5, 50)))])
@example(
    steps=[
        QuoteOne(_q(0, None, 0, 30)),
        ImportOrders((ImportRow(order=0, gpu=1, quantity=4, quote=None),)),
        ImportOrders((ImportRow(order=None, gpu=3, quantity=2, quote=(0, 20)),)),
    ]
)
@example(steps=[ImportQuotes((_q(0, 0, 3, 33), _q(1, None, 2, 10)))])
@example(
    steps=[
        QuoteOne(_q(0, 0, 0, 30)),
        MovePlacedOn(0, -5, update_fields=True),
        MovePlacedOn(0, -3, update_fields=False),
    ]
)
@example(
    steps=[
        AddLine(0, 1, 4),
        QuoteOne(_q(0, 1, 0, 30)),
        QuoteOne(_q(0, None, 1, 20)),
        DeleteQuote(1),
        DeleteLine(1),
        Receipt(0, 2, 5),
        RemoveReceipt(0),
    ]
)
@example(
    steps=[
        QuoteOne(_q(0, None, 0, 30)),
        AdminOrder(0, -2, 3, new_line=1, delete_line=None, quote=_q(0, 0, 3, 40), receipt=(0, 1)),
        AdminOrder(0, 0, None, new_line=None, delete_line=1, quote=None, receipt=None),
        AdminQuote(_q(1, None, 0, 15)),
    ]
)
# The lead-time tally follows the order's vendor, its lines' GPU models, and its deletion.
@example(
    steps=[
        QuoteOne(_q(0, None, 0, 30)),
        QuoteOne(_q(0, 0, 5, 40)),
        ChangeVendor(0, update_fields=True),
        ChangeGpu(0, 2, update_fields=True),
        ChangeVendor(0, update_fields=False),
        DeleteOrder(0),
    ]
)
# The scorecards' tally follows alerts raised, acknowledged and resolved, and receipts.
@example(
    steps=[
        QuoteOne(_q(0, None, 0, 30)),
        QuoteOne(_q(0, None, 10, 150)),
        Scan(20),
        Acknowledge(0),
        Acknowledge(0),  # the order's second open alert: now it has none
        QuoteOne(_q(0, None, 12, 200)),
        Scan(30),
        Receipt(0, 8, 40),
        Scan(50),
    ]
)
# The order tally follows the order's buyer, vendor, status and slip, alerts raised, resolved
# and acknowledged.
@example(
    steps=[
        QuoteOne(_q(0, None, 0, 30)),
        QuoteOne(_q(0, None, 10, 150)),
        Scan(20),
        ChangeBuyer(0, update_fields=True),
        ChangeVendor(0, update_fields=False),
        ChangeStatus(0, "cancelled", update_fields=True),
        ChangeStatus(0, "confirmed", update_fields=False),
        ChangeBuyer(0, update_fields=False),
        Acknowledge(0),
        ChangeStatus(0, "draft", update_fields=False),
        Scan(30),
    ]
)
# A line deleted with a quote of its own: the order's re-quotes count one fewer.
@example(steps=[QuoteOne(_q(0, None, 0, 30)), QuoteOne(_q(0, 0, 5, 40)), DeleteLine(0)])
# The second order's latest-finishing line moves to the first: both orders' schedules change.
@example(
    steps=[
        AddLine(1, 1, 4),
        AddLine(1, 2, 4),
        QuoteOne(_q(1, None, 0, 90)),
        QuoteOne(_q(1, 1, 1, 30)),
        AdminLine(1, 0, 4),
    ]
)
def test_every_write_leaves_every_stored_schedule_equal_to_its_history(
    world: World, steps: list[Step]
) -> None:
    with transaction.atomic():
        _start(world)
        _assert_every_schedule_matches_its_history([])
        for number, step in enumerate(steps, start=1):
            _run(step, world)
            _assert_every_schedule_matches_its_history(steps[:number])
        transaction.set_rollback(True)
