"""Baseline/current delivery dates, lead times, slip and re-quote counts, computed in SQL."""

from datetime import date

import pytest

from orders import services
from orders.demo import load_demo
from orders.models import OrderLine, PurchaseOrder
from tests.factories import GpuModelFactory, OrderLineFactory, PurchaseOrderFactory

pytestmark = pytest.mark.django_db

D = date.fromisoformat


def figures(order: PurchaseOrder) -> tuple:
    o = PurchaseOrder.objects.all().get(pk=order.pk)
    return (
        o.baseline_delivery_date,
        o.current_delivery_date,
        o.baseline_lead_days,
        o.current_lead_days,
        o.slip_days,
        o.requote_count,
    )


def test_demo_order_pushed_to_december() -> None:
    """The issue's example: placed 2023-04-14, quoted 2023-05-15, re-quoted 2023-12-15."""
    load_demo()
    order = PurchaseOrder.objects.get(po_number="PO-2023-0412")
    assert figures(order) == (D("2023-05-15"), D("2023-12-15"), 31, 245, 214, 2)


@pytest.mark.parametrize(
    ("po_number", "expected"),
    [
        ("PO-2023-0320", (D("2023-04-20"), D("2023-06-19"), 31, 91, 60, 2)),  # 1 -> 3 months
        ("PO-2023-0418", (D("2023-05-19"), D("2023-09-29"), 31, 164, 133, 2)),
        ("PO-2023-0301", (D("2023-03-31"), D("2023-03-31"), 30, 30, 0, 0)),  # on time
        ("PO-2023-0405", (D("2023-05-08"), D("2023-07-14"), 33, 100, 67, 1)),  # split shipment
        ("PO-2023-0510", (None, None, None, None, None, 0)),  # draft, never quoted
    ],
)
def test_demo_figures(po_number: str, expected: tuple) -> None:
    load_demo()
    assert figures(PurchaseOrder.objects.get(po_number=po_number)) == expected


def test_same_day_requotes_the_later_one_is_current() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    OrderLineFactory(order=order)
    services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
    services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-07-14"))
    assert figures(order)[:2] == (D("2023-05-15"), D("2023-07-14"))


def test_leap_day_is_counted() -> None:
    order = PurchaseOrderFactory(placed_on=D("2024-02-01"))
    OrderLineFactory(order=order)
    services.quote_add(order=order, quoted_on=D("2024-02-01"), delivery_date=D("2024-03-01"))
    assert figures(order)[2] == 29


def test_a_line_quote_overrides_the_order_quote_for_that_line_only() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-05"))
    a100 = OrderLineFactory(order=order, gpu_model=GpuModelFactory(name="A100 80GB SXM"))
    a10 = OrderLineFactory(order=order, gpu_model=GpuModelFactory(name="A10"))
    services.quote_add(order=order, quoted_on=D("2023-04-05"), delivery_date=D("2023-05-08"))
    services.quote_add(
        order=order, line=a100, quoted_on=D("2023-04-28"), delivery_date=D("2023-07-14")
    )
    lines = {line.pk: line for line in OrderLine.objects.all().filter(order=order)}
    assert (lines[a100.pk].baseline_delivery_date, lines[a100.pk].current_delivery_date) == (
        D("2023-05-08"),
        D("2023-07-14"),
    )
    assert (lines[a10.pk].current_delivery_date, lines[a10.pk].slip_days) == (D("2023-05-08"), 0)
    assert (lines[a100.pk].requote_count, lines[a10.pk].requote_count) == (1, 0)
    # The order is complete when its last line arrives.
    assert figures(order)[:2] == (D("2023-05-08"), D("2023-07-14"))


def test_a_later_order_level_requote_applies_to_every_line_again() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-05"))
    a100 = OrderLineFactory(order=order, gpu_model=GpuModelFactory(name="A100 80GB SXM"))
    services.quote_add(
        order=order, line=a100, quoted_on=D("2023-04-05"), delivery_date=D("2023-07-14")
    )
    services.quote_add(order=order, quoted_on=D("2023-06-01"), delivery_date=D("2023-12-15"))
    line = OrderLine.objects.all().get(pk=a100.pk)
    assert (line.current_delivery_date, line.slip_days) == (D("2023-12-15"), 154)


def test_order_without_lines_uses_its_order_level_quotes() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"), status=PurchaseOrder.Status.DRAFT)
    services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
    assert figures(order) == (D("2023-05-15"), D("2023-05-15"), 31, 31, 0, 0)


def test_slipping_selects_orders_whose_date_moved_later() -> None:
    load_demo()
    slipping = set(PurchaseOrder.objects.slipping().values_list("po_number", flat=True))
    assert slipping == {
        "PO-2023-0412",
        "PO-2023-0320",
        "PO-2023-0418",
        "PO-2023-0405",
        "PO-2023-0502",
    }
