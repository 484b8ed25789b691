"""Export -> import -> export: the demo data survives the trip through CSV byte for byte."""

from __future__ import annotations

from typing import Any

import pytest
from django.core.management import call_command

from orders import exports, imports
from orders.demo import load_demo
from orders.models import DeliveryQuote, GpuModel, OrderLine, PurchaseOrder, Vendor

pytestmark = pytest.mark.django_db


def _export() -> tuple[str, str]:
    orders = PurchaseOrder.objects.all()
    return "".join(exports.orders_csv(orders)), "".join(exports.quotes_csv(orders))


def _empty_the_database() -> None:
    call_command("flush", "--no-input", verbosity=0)


@pytest.mark.django_db(transaction=True)  # flush needs no transaction open on PostgreSQL
def test_export_import_export_is_byte_identical(
    django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    freezer_today("2023-07-21")  # one "today" for the overdue rule on both sides
    with django_capture_on_commit_callbacks(execute=True):
        load_demo()
    orders_csv, quotes_csv = _export()
    assert orders_csv.count("\n") == OrderLine.objects.count() + 1
    assert quotes_csv.count("\n") == DeliveryQuote.objects.count() + 1

    _empty_the_database()
    assert not PurchaseOrder.objects.exists()
    assert not Vendor.objects.exists()
    assert not GpuModel.objects.exists()
    with django_capture_on_commit_callbacks(execute=True):  # the imports' slip checks
        orders_report = imports.orders_import(content=orders_csv.encode())
        quotes_report = imports.quotes_import(content=quotes_csv.encode())
    assert orders_report.ok, [str(e) for e in orders_report.errors]
    assert quotes_report.ok, [str(e) for e in quotes_report.errors]

    assert _export() == (orders_csv, quotes_csv)


def test_neutralised_cells_read_back_as_they_were() -> None:
    for text in ['=HYPERLINK("x")', "+1", "-2", "@SUM", "'=already", "plain", "O'Brien"]:
        assert exports.restore(exports.neutralise(text)) == text
