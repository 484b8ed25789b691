"""CSV imports of orders and re-quotes: all or nothing, idempotent, every error named by row and
column, and tolerant of what spreadsheets write (BOM, CRLF, blank rows, padded cells)."""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.files.uploadhandler import FileUploadHandler
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orders import bulk, csv_format, imports, permissions
from orders.dates import today
from orders.demo import load_demo
from orders.imports import ImportReport, RowError, orders_import, quotes_import
from orders.models import (
    DeliveryQuote,
    GpuModel,
    OrderLine,
    PriceQuote,
    PurchaseOrder,
    SlipAlert,
    Vendor,
)
from orders.roles import Role, role_of
from orders.uploads import SizeLimitUploadHandler, rejected_upload
from tests.conftest import run_at_once
from tests.csv_files import GOOD_ORDER, ORDER_HEADER, csv_file
from tests.factories import NO_ROLE, UserFactory

pytestmark = pytest.mark.django_db

D = date.fromisoformat


def _csv(rows: list[dict[str, str]], header: tuple[str, ...] = ORDER_HEADER) -> bytes:
    return csv_file(rows, header)


def _order(**changes: str) -> dict[str, str]:
    return GOOD_ORDER | changes


def _two_orders() -> list[dict[str, str]]:
    """PO-1 with two lines (one row each, the same quote on both) and PO-2 with one line."""
    return [
        _order(po_number="PO-1"),
        _order(po_number="PO-1", gpu_model="H100 SXM", quantity="16", unit_price="41500"),
        _order(
            po_number="PO-2",
            vendor="Northwind Servers",
            buyer_email="Bob@GPU-Buyers.example",
            gpu_model="A10",
            quantity="40",
            unit_price="2800",
            status="",
            need_by="",
            quoted_on="",
            delivery_date="",
        ),
    ]


def _table_counts() -> dict[str, int]:
    """Rows in every table, to prove a failed import wrote nothing anywhere."""
    return {m._meta.label: m._default_manager.count() for m in apps.get_models()}


def _only_error(report: ImportReport) -> RowError:
    assert len(report.errors) == 1, [str(e) for e in report.errors]
    return report.errors[0]


# --- Orders: the happy path and idempotency ------------------------------------------------------


def test_orders_import_creates_vendors_models_buyers_orders_lines_and_quotes() -> None:
    report = orders_import(content=_csv(_two_orders()), filename="spring.csv")

    assert report.errors == []
    assert report.created == {
        "vendors": 2,
        "GPU models": 3,
        "buyers": 2,
        "orders": 2,
        "order lines": 3,
        "quotes": 1,
    }
    assert report.rows == 3
    po1 = PurchaseOrder.objects.get(po_number="PO-1")
    assert (po1.vendor.name, po1.status, po1.placed_on, po1.need_by, po1.currency) == (
        "Pacific Silicon Distribution",
        "confirmed",
        D("2023-04-14"),
        D("2023-09-30"),
        "USD",
    )
    assert sorted(po1.lines.values_list("gpu_model__name", "quantity", "unit_price")) == [
        ("A100 80GB SXM", 384, 10000),
        ("H100 SXM", 16, 41500),
    ]
    quote = po1.quotes.get()
    assert (quote.line, quote.quoted_on, quote.delivery_date) == (
        None,
        D("2023-04-14"),
        D("2023-05-15"),
    )
    assert quote.source == "CSV import spring.csv"
    po2 = PurchaseOrder.objects.get(po_number="PO-2")
    assert (po2.status, po2.need_by, po2.quotes.count()) == ("placed", None, 0)
    # Buyers: active, with the Buyer role, no usable password, username from the address.
    assert po2.buyer.username == "bob@gpu-buyers.example"
    assert po2.buyer.email == "Bob@gpu-buyers.example"
    assert po2.buyer.is_active
    assert po2.buyer.is_staff
    assert role_of(po2.buyer) is Role.BUYER
    assert not po2.buyer.has_usable_password()
    assert permissions.view_scope(po2.buyer) is not permissions.Scope.NONE
    assert GpuModel.objects.get(name="A10").memory_gb == 24
    assert GpuModel.objects.get(name="A100 80GB SXM").memory_gb == 80
    assert Vendor.objects.get(name="Northwind Servers").kind == Vendor.Kind.DISTRIBUTOR


def test_importing_the_same_orders_file_twice_changes_nothing_the_second_time() -> None:
    content = _csv(_two_orders())
    orders_import(content=content)
    before = _table_counts()

    again = orders_import(content=content)

    assert again.errors == []
    assert set(again.created.values()) == {0}
    assert again.unchanged == {"orders": 2, "order lines": 3, "quotes": 1}
    assert _table_counts() == before


def test_orders_import_matches_recorded_vendors_models_and_buyers_ignoring_case() -> None:
    load_demo()
    before = _table_counts()
    rows = [
        _order(
            po_number="PO-NEW",
            vendor="pacific silicon distribution",
            buyer_email="ALICE@gpu-buyers.example",
            gpu_model="a100 80gb sxm",
        )
    ]

    report = orders_import(content=_csv(rows))

    assert report.created == {
        "vendors": 0,
        "GPU models": 0,
        "buyers": 0,
        "orders": 1,
        "order lines": 1,
        "quotes": 1,
    }
    order = PurchaseOrder.objects.get(po_number="PO-NEW")
    assert order.buyer.username == "alice"
    assert _table_counts()["orders.PurchaseOrder"] == before["orders.PurchaseOrder"] + 1


def test_a_recorded_order_that_differs_from_the_file_is_an_error_not_an_update() -> None:
    load_demo()  # PO-2023-0412: Pacific Silicon, alice, 384 A100 at 10,000, placed 2023-04-14
    before = _table_counts()
    rows = [
        _order(placed_on="2023-04-15", quoted_on="2023-04-15", quantity="400"),
        _order(gpu_model="A10", quantity="8", unit_price="2800"),
    ]
    # Rows 2 and 3 are lines of one PO: their order-level columns must agree too.
    report = orders_import(content=_csv(rows))

    found = {(e.row, e.column): e for e in report.errors}
    assert "already recorded with placed_on '2023-04-14'" in found[2, "placed_on"].message
    assert "Duplicate PO PO-2023-0412 with conflicting data" in found[3, "placed_on"].message
    assert (
        "already has a line for A100 80GB SXM with quantity '384'" in found[2, "quantity"].message
    )
    assert _table_counts() == before


def test_an_identical_recorded_order_is_left_alone_and_new_lines_and_quotes_are_added() -> None:
    load_demo()
    rows = [
        _order(quoted_on="2023-07-21", delivery_date="2023-12-15"),  # recorded already
        _order(gpu_model="A10", quantity="8", unit_price="2800", quoted_on="2023-08-01"),
    ]
    rows[1]["delivery_date"] = "2024-01-31"

    report = orders_import(content=_csv(rows))

    assert report.errors == []
    assert report.unchanged == {"orders": 1, "order lines": 1, "quotes": 1}
    assert report.created["order lines"] == 1
    assert report.created["quotes"] == 1
    order = PurchaseOrder.objects.get(po_number="PO-2023-0412")
    assert order.lines.count() == 2
    assert order.quotes.count() == 4


def test_a_new_buyer_whose_address_is_someone_elses_username_gets_another_username() -> None:
    UserFactory(username="bob@gpu-buyers.example", email="robert@elsewhere.example")
    orders_import(content=_csv([_order(po_number="PO-9", buyer_email="bob@gpu-buyers.example")]))
    assert PurchaseOrder.objects.get().buyer.username == "bob@gpu-buyers.example-2"


# --- Orders: every bad value is named, and nothing is written ------------------------------------

FUTURE = (today() + timedelta(days=1)).isoformat()


@pytest.mark.parametrize(
    ("changes", "column", "value", "reason"),
    [
        ({"quantity": "0"}, "quantity", "0", "Quantity must be at least 1, not 0."),
        ({"quantity": "-8"}, "quantity", "-8", "Quantity must be at least 1, not -8."),
        ({"quantity": "eight"}, "quantity", "eight", "Not a whole number."),
        ({"quantity": "8.5"}, "quantity", "8.5", "Not a whole number."),
        ({"unit_price": "10k"}, "unit_price", "10k", "Not a number"),
        ({"unit_price": "$10,000"}, "unit_price", "$10,000", "Not a number"),
        ({"unit_price": "-1"}, "unit_price", "-1", "Unit price cannot be negative"),
        ({"unit_price": "1.005"}, "unit_price", "1.005", "no more than 2 decimal places"),
        ({"placed_on": "14/04/2023"}, "placed_on", "14/04/2023", "ISO format YYYY-MM-DD"),
        ({"placed_on": "2023-02-30"}, "placed_on", "2023-02-30", "No such date."),
        ({"need_by": "2023-04-01"}, "need_by", "2023-04-01", "is before the order was placed"),
        ({"status": "shipped"}, "status", "shipped", "Unknown status; one of: draft, placed"),
        ({"currency": "usd"}, "currency", "usd", "three-letter ISO 4217 code"),
        ({"currency": "US$"}, "currency", "US$", "three-letter ISO 4217 code"),
        ({"buyer_email": "alice"}, "buyer_email", "alice", "Not an email address."),
        ({"po_number": ""}, "po_number", "", "Required: this cell is empty."),
        ({"vendor": ""}, "vendor", "", "Required: this cell is empty."),
        ({"po_number": "P" * 65}, "po_number", "P" * 65, "at most 64 characters"),
        ({"gpu_model": "B200"}, "gpu_model", "B200", "Unknown GPU model, and its memory"),
        (
            {"delivery_date": "2023-04-01"},
            "delivery_date",
            "2023-04-01",
            "Delivery date 2023-04-01 is before the order was placed (2023-04-14).",
        ),
        (
            {"quoted_on": "2023-04-13"},
            "quoted_on",
            "2023-04-13",
            "Quoted-on date 2023-04-13 is before the order was placed (2023-04-14).",
        ),
        (
            {"quoted_on": "2023-06-01", "delivery_date": "2023-05-01"},
            "delivery_date",
            "2023-05-01",
            "is before the day it was quoted (2023-06-01)",
        ),
        ({"quoted_on": FUTURE, "delivery_date": "2099-01-01"}, "quoted_on", FUTURE, "future"),
        ({"delivery_date": ""}, "delivery_date", "", "Required with quoted_on"),
        ({"quoted_on": ""}, "quoted_on", "", "Required with delivery_date"),
    ],
)
def test_a_bad_value_is_reported_with_row_column_value_and_reason_and_nothing_is_written(
    changes: dict[str, str], column: str, value: str, reason: str
) -> None:
    load_demo()
    before = _table_counts()
    rows = [_order(po_number="PO-OK", vendor="New Vendor", buyer_email="new@b.example")]
    rows.append(
        _order(po_number="PO-BAD", **{k: v for k, v in changes.items() if k != "po_number"})
    )
    if "po_number" in changes:
        rows[1]["po_number"] = changes["po_number"]

    report = orders_import(content=_csv(rows))

    error = _only_error(report)
    assert (error.row, error.column, error.value) == (3, column, value)
    assert reason in error.message
    assert str(error).startswith(f"row 3, column {column}")
    assert not report.ok
    assert _table_counts() == before


def test_several_rows_of_one_po_must_agree_on_the_order_columns() -> None:
    rows = [_order(), _order(gpu_model="A10", quantity="2", vendor="Another Vendor")]
    error = _only_error(orders_import(content=_csv(rows)))
    assert (error.row, error.column, error.value) == (3, "vendor", "Another Vendor")
    assert error.message == (
        "Duplicate PO PO-2023-0412 with conflicting data: row 2 has 'Pacific Silicon Distribution'."
    )


def test_a_line_repeated_with_another_quantity_is_a_conflict() -> None:
    rows = [_order(), _order(quantity="100", quoted_on="2023-05-01", delivery_date="2023-06-01")]
    error = _only_error(orders_import(content=_csv(rows)))
    assert (error.row, error.column) == (3, "quantity")


def test_every_error_of_the_file_is_reported_in_row_order() -> None:
    rows = [
        _order(po_number="PO-1", quantity="0"),
        _order(po_number="PO-2", placed_on="yesterday", currency="eur"),
        _order(po_number="PO-3"),
        _order(po_number="PO-4", unit_price="free"),
    ]
    report = orders_import(content=_csv(rows))
    assert [(e.row, e.column) for e in report.errors] == [
        (2, "quantity"),
        (3, "placed_on"),
        (3, "currency"),
        (5, "unit_price"),
    ]
    assert report.summary() == ["4 error(s) in 4 row(s): nothing was imported."]
    assert not PurchaseOrder.objects.exists()


# --- Reading files ----------------------------------------------------------------------------


def test_what_spreadsheets_write_is_tolerated() -> None:
    """A BOM, CRLF line ends, blank and trailing rows, spaces around cells and header names,
    and derived columns from an export (ignored)."""
    header = [f" {c} " for c in (*ORDER_HEADER, "slip_days")]
    rows = [[f"  {row[c]}  " for c in ORDER_HEADER] + [" 214 "] for row in _two_orders()]
    text = "\r\n".join(",".join(cells) for cells in [header, rows[0], [""] * 3, *rows[1:]])
    content = b"\xef\xbb\xbf" + (text + "\r\n\r\n,,,\r\n\r\n").encode()

    report = orders_import(content=content)

    assert report.errors == []
    assert report.created["orders"] == 2
    assert report.created["order lines"] == 3
    assert PurchaseOrder.objects.get(po_number="PO-1").vendor.name == "Pacific Silicon Distribution"
    assert "slip_days" not in report.header


def test_quoted_cells_with_commas_quotes_and_line_breaks_are_read() -> None:
    content = (
        b"po_number,quoted_on,delivery_date,note\n"
        b'PO-2023-0412,2023-08-01,2023-12-20,"Pushed again, ""maybe"" December, said the rep"\n'
    )
    load_demo()
    report = quotes_import(content=content)
    assert report.errors == []
    assert DeliveryQuote.objects.get(quoted_on=D("2023-08-01")).note == (
        'Pushed again, "maybe" December, said the rep'
    )
    # A line break in a quoted cell is read as part of the cell, and a note is one line.
    report = quotes_import(content=content.replace(b"December, said", b"December\nsaid"))
    assert [(e.row, e.column) for e in report.errors] == [(2, "note")]


@pytest.mark.parametrize(
    ("content", "row", "message"),
    [
        (b"", None, "The file is empty."),
        (b"\xef\xbb\xbf\r\n\r\n", None, "The file is empty."),
        (
            _csv([_order(vendor="Société Générale")]).decode().encode("latin-1"),
            None,
            "not UTF-8 text: byte 0xE9 on line 2",
        ),
        ("po_number".encode("utf-16"), None, "This file is UTF-16 text"),
        ("po_number".encode("utf-16-be"), None, "not a text file (it contains NUL bytes"),
        (b"PK\x03\x04\x14\x00\x06\x00", None, "spreadsheet workbook"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR", None, "not a text file"),
        (
            _csv([_order()]).replace(b"PO-2023-0412,", b'"PO-2023-0412"x,'),
            2,
            "Row 2 is not valid CSV",
        ),
        (_csv([_order()]) + b'"PO-2,never closed\nPO-3\n', 3, "Row 3 is not valid CSV"),
        (_csv([_order()]).split(b"\n", 1)[1], None, "unknown column(s): PO-2023-0412"),
        (
            _csv([_order()], header=("po_number", "vendor", "colour")),
            None,
            "unknown column(s): colour; missing required column(s): buyer_email, gpu_model",
        ),
        (
            _csv([_order()], header=(*ORDER_HEADER, "vendor")),
            None,
            "column(s) named twice: vendor",
        ),
        (
            _csv([_order()], header=(*ORDER_HEADER, "")),
            None,
            "header cell(s) 13 have no column name",
        ),
        (b"\n\npo_number\n", None, "Row 1 must be the header"),
    ],
)
@pytest.mark.parametrize("piece", [None, 1], ids=["bytes", "byte-by-byte"])
def test_files_that_are_not_clean_csv_are_refused_with_a_message(
    content: bytes, row: int | None, message: str, piece: int | None
) -> None:
    # Read whole, and as a stream of one-byte pieces: a check on the file's start, a line
    # number or a character split between pieces reads the same.
    report = orders_import(content=content if piece is None else _pieces(content, piece))
    assert not report.ok
    assert report.errors[0].row == row
    assert message in report.errors[0].message
    assert not PurchaseOrder.objects.exists()


def _pieces(content: bytes, size: int) -> Iterator[bytes]:
    return (content[start : start + size] for start in range(0, len(content), size))


@pytest.mark.parametrize("size", [1, 2, 3, 7, 64 * 1024])
def test_a_file_read_in_pieces_reads_as_the_whole(size: int) -> None:
    # CR LF, a BOM, a quoted line break (in CR LF, CR and LF) and a multi-byte character,
    # wherever the pieces cut them.
    rows = [_order(vendor="Société\r\nGénérale"), _order(po_number="PO-2", vendor="Ünited\rGPU")]
    rows.append(_order(po_number="PO-3", vendor="Lone\nLine"))
    out = StringIO(newline="")
    csv.writer(out, lineterminator="\r\n").writerows(
        [ORDER_HEADER, *([r[c] for c in ORDER_HEADER] for r in rows)]
    )
    content = codecs.BOM_UTF8 + out.getvalue().encode() + b"\r\n\r\n,,\r"
    whole = orders_import(content=content, dry_run=True)

    streamed = orders_import(content=_pieces(content, size), dry_run=True)

    # Read whole, each quoted line break is in its cell: refused there as a control character.
    assert [(e.row, e.column) for e in whole.errors] == [
        (2, "vendor"),
        (3, "vendor"),
        (4, "vendor"),
    ]
    assert [r[1] for r in whole.preview] == ["Société\r\nGénérale", "Ünited\rGPU", "Lone\nLine"]
    assert (streamed.rows, streamed.preview, streamed.created, streamed.errors) == (
        whole.rows,
        whole.preview,
        whole.created,
        whole.errors,
    )


# --- Limits: a file past IMPORT_MAX_ROWS or IMPORT_MAX_BYTES is refused, and not read -----


def test_a_file_over_the_row_limit_is_refused_and_nothing_written(settings: Any) -> None:
    rows = [_order(po_number=f"PO-{n}") for n in range(3)]
    settings.IMPORT_MAX_ROWS = 3
    assert orders_import(content=_csv(rows), dry_run=True).ok  # exactly the limit

    settings.IMPORT_MAX_ROWS = 2
    before = _table_counts()
    error = _only_error(orders_import(content=_csv(rows) + b"\n,,\n\n"))

    assert error.row is None
    assert error.message == (
        "The file has more than 2 rows (IMPORT_MAX_ROWS): split it into files of at most 2 "
        "rows and import each one."
    )
    assert _table_counts() == before
    # Blank rows do not count.
    assert orders_import(content=_csv(rows[:2]) + b"\n,,\n\n", dry_run=True).ok


def test_a_file_over_the_byte_limit_is_refused_and_nothing_written(settings: Any) -> None:
    content = _csv([_order(po_number=f"PO-{n}") for n in range(3)])
    settings.IMPORT_MAX_BYTES = len(content)
    assert orders_import(content=content, dry_run=True).ok  # exactly the limit

    settings.IMPORT_MAX_BYTES = len(content) - 1
    before = _table_counts()
    error = _only_error(orders_import(content=content))

    assert error.row is None
    assert error.message.startswith(
        f"The file is larger than {len(content) - 1} bytes ({len(content) - 1} bytes, "
        "IMPORT_MAX_BYTES): split it into smaller files"
    )
    assert _table_counts() == before


class _EndlessOrders:
    """A binary file object of an orders file of `size` bytes, made as it is read; counts the
    bytes handed out."""

    def __init__(self, size: int) -> None:
        self.size, self.handed_out = size, 0
        self.rows = (
            f"PO-{n},Vendor,a@example.com,,A10,1,1.00,USD,2023-04-14,,,\n".encode()
            for n in itertools.count()
        )
        self.pending = (",".join(ORDER_HEADER) + "\n").encode()

    def read(self, n: int = -1) -> bytes:
        n = self.size - self.handed_out if n < 0 else min(n, self.size - self.handed_out)
        while len(self.pending) < n:
            self.pending += next(self.rows)
        piece, self.pending = self.pending[:n], self.pending[n:]
        self.handed_out += len(piece)
        return piece


def test_a_huge_file_fails_fast_at_the_byte_limit_without_reading_the_rest(
    settings: Any,
) -> None:
    settings.IMPORT_MAX_BYTES = 1024 * 1024
    endless = _EndlessOrders(size=10 * settings.IMPORT_MAX_BYTES)

    error = _only_error(orders_import(content=endless))

    assert error.message.startswith("The file is larger than 1.0 MB (1048576 bytes")
    assert endless.handed_out <= settings.IMPORT_MAX_BYTES + imports.READ_SIZE
    assert not PurchaseOrder.objects.exists()


def test_a_huge_file_fails_fast_at_the_row_limit_without_reading_the_rest(
    settings: Any,
) -> None:
    settings.IMPORT_MAX_ROWS = 1000
    endless = _EndlessOrders(size=settings.IMPORT_MAX_BYTES)

    error = _only_error(orders_import(content=endless))

    assert error.message.startswith("The file has more than 1,000 rows (IMPORT_MAX_ROWS)")
    # 1,000 rows are about 60 KB: the reading stopped within a piece of them.
    assert endless.handed_out <= 2 * imports.READ_SIZE


def test_the_command_refuses_a_file_over_a_limit(tmp_path: Any, settings: Any) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(_csv(_two_orders()))
    settings.IMPORT_MAX_ROWS = 2
    err = StringIO()
    with pytest.raises(CommandError, match="1 error"):
        call_command("import_orders", str(path), stdout=StringIO(), stderr=err)
    assert "file: The file has more than 2 rows (IMPORT_MAX_ROWS)" in err.getvalue()

    settings.IMPORT_MAX_ROWS, settings.IMPORT_MAX_BYTES = 3, 100
    err = StringIO()
    with pytest.raises(CommandError, match="1 error"):
        call_command("import_orders", str(path), stdout=StringIO(), stderr=err)
    assert "file: The file is larger than 100 bytes" in err.getvalue()
    assert not PurchaseOrder.objects.exists()


def test_a_row_with_more_cells_than_the_header_is_refused() -> None:
    content = _csv([_order(), _order(po_number="PO-2")])
    content = content.replace(b"PO-2,", b"PO-2,Extra,", 1)
    error = _only_error(orders_import(content=content))
    assert error.row == 3
    assert error.message.startswith("This row has 13 cells but the header has 12 columns")


def test_a_header_only_file_imports_nothing() -> None:
    report = orders_import(content=_csv([]))
    assert report.ok
    assert report.rows == 0
    assert set(report.created.values()) == {0}


def test_optional_columns_may_be_left_out() -> None:
    report = orders_import(content=_csv([_order()], header=csv_format.ORDER_REQUIRED))
    assert report.errors == []
    order = PurchaseOrder.objects.get()
    assert (order.status, order.need_by, order.quotes.count()) == ("placed", None, 0)


# --- Dry run and the commands ---------------------------------------------------------------


def test_a_dry_run_reports_what_would_be_created_and_writes_nothing() -> None:
    before = _table_counts()
    report = orders_import(content=_csv(_two_orders()), dry_run=True)
    assert report.ok
    assert report.created["orders"] == 2
    assert report.summary()[-1] == "Dry run: nothing was written."
    assert _table_counts() == before


def test_import_orders_command_prints_the_counts(tmp_path: Any) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(_csv(_two_orders()))
    out = StringIO()
    call_command("import_orders", str(path), "--dry-run", stdout=out)
    assert "Would create: 2 vendors, 3 GPU models, 2 buyers, 2 orders" in out.getvalue()
    assert not PurchaseOrder.objects.exists()

    out = StringIO()
    call_command("import_orders", str(path), stdout=out)
    assert out.getvalue().splitlines() == [
        "3 row(s) read.",
        "Created: 2 vendors, 3 GPU models, 2 buyers, 2 orders, 3 order lines, 1 quotes.",
        "Unchanged (already recorded): 0 orders, 0 order lines, 0 quotes.",
        "2 buyer account(s) created: active, with the Buyer role and no password; they are "
        'emailed about their orders\' slips and can set a password with "Forgot password?" '
        "on the login page.",
    ]
    assert PurchaseOrder.objects.count() == 2


def test_import_commands_fail_printing_every_error(tmp_path: Any) -> None:
    path = tmp_path / "orders.csv"
    path.write_bytes(_csv([_order(quantity="0"), _order(po_number="PO-2", currency="usd")]))
    err = StringIO()
    with pytest.raises(CommandError, match=r"2 error\(s\) in 2 row\(s\): nothing was imported"):
        call_command("import_orders", str(path), stderr=err)
    assert err.getvalue().splitlines() == [
        "row 2, column quantity, value '0': Quantity must be at least 1, not 0.",
        "row 3, column currency, value 'usd': Currency must be a three-letter ISO 4217 code in "
        "capitals, e.g. USD.",
    ]
    with pytest.raises(CommandError, match="Cannot read"):
        call_command("import_quotes", str(tmp_path / "missing.csv"))
    assert not PurchaseOrder.objects.exists()


# --- Quotes -----------------------------------------------------------------------------------

QUOTE_HEADER = csv_format.QUOTE_COLUMNS


def _quotes_csv(*rows: tuple[str, ...]) -> bytes:
    return _csv([dict(zip(QUOTE_HEADER, row, strict=False)) for row in rows], QUOTE_HEADER)


def test_quotes_import_adds_order_and_line_quotes_once() -> None:
    load_demo()  # PO-2023-0405: A100 and A10 lines
    content = _quotes_csv(
        ("PO-2023-0405", "2023-06-01", "2023-08-15", "Whole order slips", ""),
        ("PO-2023-0405", "2023-06-02", "2023-09-01", "A100s only", "a100 80gb sxm"),
        ("PO-2023-0405", "2023-06-02", "2023-09-01", "the same again", "A100 80GB SXM"),
        ("PO-2023-0412", "2023-07-21", "2023-12-15", "recorded by the demo", ""),
    )

    report = quotes_import(content=content)

    assert report.errors == []
    assert (report.created, report.unchanged) == ({"quotes": 2}, {"quotes": 2})
    quotes = DeliveryQuote.objects.filter(order__po_number="PO-2023-0405")
    line_quote = quotes.get(quoted_on=D("2023-06-02"))
    assert line_quote.line == OrderLine.objects.get(
        order__po_number="PO-2023-0405", gpu_model__name="A100 80GB SXM"
    )
    assert line_quote.note == "A100s only"
    assert quotes.get(quoted_on=D("2023-06-01")).line is None

    before = _table_counts()
    again = quotes_import(content=content)
    assert (again.created, again.unchanged) == ({"quotes": 0}, {"quotes": 4})
    assert _table_counts() == before


@pytest.mark.parametrize(
    ("row", "column", "value", "reason"),
    [
        (("PO-404", "2023-06-01", "2023-08-01"), "po_number", "PO-404", "Unknown PO"),
        (
            ("PO-2023-0405", "2023-06-01", "2023-08-01", "", "H100 SXM"),
            "gpu_model",
            "H100 SXM",
            "PO-2023-0405 has no line for this GPU model (its lines: A10, A100 80GB SXM).",
        ),
        (("PO-2023-0405", "1 June", "2023-08-01"), "quoted_on", "1 June", "YYYY-MM-DD"),
        (("PO-2023-0405", "2023-06-01", ""), "delivery_date", "", "Required"),
        (
            ("PO-2023-0405", "2023-04-01", "2023-08-01"),
            "quoted_on",
            "2023-04-01",
            "is before the order was placed (2023-04-05)",
        ),
        (
            ("PO-2023-0405", "2023-06-01", "2023-04-01"),
            "delivery_date",
            "2023-04-01",
            "Delivery date 2023-04-01 is before the order was placed (2023-04-05).",
        ),
        (("PO-2023-0405", FUTURE, "2099-01-01"), "quoted_on", FUTURE, "in the future"),
        (("PO-2023-0405", "2023-06-01", "2023-08-01", "n" * 501), "note", "n" * 501, "at most 500"),
    ],
)
def test_a_bad_quote_row_is_named_and_nothing_is_written(
    row: tuple[str, ...], column: str, value: str, reason: str
) -> None:
    load_demo()
    before = _table_counts()
    content = _quotes_csv(("PO-2023-0412", "2023-08-01", "2024-01-15"), row)

    error = _only_error(quotes_import(content=content))

    assert (error.row, error.column, error.value) == (3, column, value)
    assert reason in error.message
    assert _table_counts() == before


def test_quotes_import_refuses_a_file_missing_a_required_column() -> None:
    report = quotes_import(content=b"po_number,delivery_date\nPO-1,2023-05-01\n")
    assert report.errors[0].row is None
    assert "missing required column(s): quoted_on" in report.errors[0].message


def test_an_imported_requote_that_slips_raises_alerts(
    django_capture_on_commit_callbacks: Any,
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        orders_import(content=_csv([_order(need_by="2023-09-30")]))
    assert not SlipAlert.objects.filter(code="december_delivery").exists()

    with django_capture_on_commit_callbacks(execute=True):
        quotes_import(content=_quotes_csv(("PO-2023-0412", "2023-07-21", "2023-12-15")))

    assert set(SlipAlert.objects.values_list("code", flat=True)) >= {
        "december_delivery",
        "past_need_by",
        "lead_time_multiplied",
    }


def test_an_imported_buyer_is_emailed_about_their_orders_slips(
    mailoutbox: list, settings: Any
) -> None:
    settings.PROCUREMENT_MANAGERS = []
    report = orders_import(
        content=_csv(
            [_order(buyer_email="New.Buyer@gpu-buyers.example", delivery_date="2023-12-15")]
        )
    )
    assert report.created["buyers"] == 1

    call_command("scan_slips", "--date", "2023-05-01", stdout=StringIO())

    assert [m.to for m in mailoutbox] == [["New.Buyer@gpu-buyers.example"]]
    assert GOOD_ORDER["po_number"] in mailoutbox[0].subject


def test_a_dry_run_says_how_many_buyer_accounts_it_would_create() -> None:
    lines = orders_import(content=_csv(_two_orders()), dry_run=True).summary()
    assert lines[-2].startswith("2 buyer account(s) would be created: active, with the Buyer")
    assert '"Forgot password?"' in lines[-2]
    again = orders_import(content=_csv([*_two_orders()[:1], _order(po_number="PO-3")]))
    assert again.created["buyers"] == 1
    assert not any(
        "buyer account" in line
        for line in orders_import(content=_csv([_order(po_number="PO-4")])).summary()
    )


# --- Cost: a fixed number of queries whatever the number of rows -----------------------------


def _orders_file(first: int, n: int) -> bytes:
    """n new orders, each with a new vendor, buyer and GPU model, a line and a quote."""
    return _csv(
        [
            _order(
                po_number=f"PO-{i}",
                vendor=f"Vendor {i}",
                buyer_email=f"buyer{i}@gpu-buyers.example",
                gpu_model=f"GPU {i} 80GB",
            )
            for i in range(first, first + n)
        ]
    )


def test_orders_import_runs_the_same_queries_for_5_and_50_rows(
    django_assert_num_queries: Any,
) -> None:
    with CaptureQueriesContext(connection) as new_5:
        assert orders_import(content=_orders_file(0, 5)).created["orders"] == 5
    with django_assert_num_queries(len(new_5)):
        assert orders_import(content=_orders_file(100, 50)).created["orders"] == 50
    # Again, now that all of it is recorded: everything unchanged, still no query per row.
    with CaptureQueriesContext(connection) as again_5:
        assert orders_import(content=_orders_file(0, 5)).unchanged["orders"] == 5
    with django_assert_num_queries(len(again_5)):
        assert orders_import(content=_orders_file(100, 50)).unchanged["orders"] == 50


def test_quotes_import_runs_the_same_queries_for_5_and_50_rows(
    django_assert_num_queries: Any,
) -> None:
    orders_import(content=_orders_file(0, 50))

    def quotes(first: int, n: int) -> bytes:
        return _quotes_csv(
            *[
                (f"PO-{i}", "2023-06-01", "2023-08-01", "", f"GPU {i} 80GB")
                for i in range(first, first + n)
            ]
        )

    with CaptureQueriesContext(connection) as with_5:
        assert quotes_import(content=quotes(0, 5)).created == {"quotes": 5}
    with django_assert_num_queries(len(with_5)):
        assert quotes_import(content=quotes(5, 45)).created == {"quotes": 45}


# --- The admin: upload, preview, confirm ------------------------------------------------------

IMPORT_ORDERS = reverse("admin:orders_purchaseorder_import_orders")
IMPORT_QUOTES = reverse("admin:orders_purchaseorder_import_quotes")
CHANGELIST = reverse("admin:orders_purchaseorder_changelist")


def _upload(client: Any, url: str, content: bytes, name: str = "orders.csv") -> Any:
    return client.post(url, {"file": SimpleUploadedFile(name, content, "text/csv")})


def _staff(client: Any, *codenames: str) -> Any:
    """Staff who may change every order (a procurement manager's reach) with these
    permissions besides."""
    user = UserFactory(is_staff=True, role=NO_ROLE)
    every_order = ("view_purchaseorder", "change_purchaseorder", "change_all_purchaseorders")
    user.user_permissions.add(*Permission.objects.filter(codename__in=codenames + every_order))
    client.force_login(user)
    return client


def test_the_order_list_links_to_both_imports(admin_client_logged_in: Any) -> None:
    html = admin_client_logged_in.get(CHANGELIST).content.decode()
    assert f'href="{IMPORT_ORDERS}"' in html
    assert f'href="{IMPORT_QUOTES}"' in html


def test_admin_upload_previews_then_confirm_imports_the_same_file(
    admin_client_logged_in: Any,
) -> None:
    client = admin_client_logged_in
    form = client.get(IMPORT_ORDERS)
    assert form.status_code == 200
    page = form.content.decode()
    assert "Required columns: <code>po_number, vendor, buyer_email, gpu_model," in page
    assert "Optional columns: <code>status, need_by, quoted_on, delivery_date</code>" in page

    preview = _upload(client, IMPORT_ORDERS, _csv(_two_orders()), "spring.csv")

    assert preview.status_code == 200
    html = preview.content.decode()
    assert "Confirm import" in html
    assert preview.context["counts"][3] == ("orders", 2, 0)
    assert preview.context["report"].preview[0][0] == "PO-1"
    assert "Bob@GPU-Buyers.example" in html  # the first rows are shown
    assert not PurchaseOrder.objects.exists()  # a preview writes nothing

    done = client.post(IMPORT_ORDERS, {"token": preview.context["token"]}, follow=True)

    assert done.redirect_chain == [(CHANGELIST, 302)]
    assert "Imported spring.csv: 3 row(s) read. Created: 2 vendors" in done.content.decode()
    assert PurchaseOrder.objects.count() == 2
    assert DeliveryQuote.objects.get().recorded_by.username == "admin"
    # The token is spent: confirming again imports nothing.
    again = client.post(IMPORT_ORDERS, {"token": preview.context["token"]}, follow=True)
    assert "upload the file again" in again.content.decode()
    assert PurchaseOrder.objects.count() == 2


def test_admin_upload_with_errors_lists_them_and_offers_no_confirm(
    admin_client_logged_in: Any,
) -> None:
    content = _csv([_order(quantity="0"), _order(po_number="PO-2", placed_on="2023/04/14")])
    response = _upload(admin_client_logged_in, IMPORT_ORDERS, content)
    html = response.content.decode()
    assert response.status_code == 200
    assert "2 errors: nothing will be imported" in html
    assert "row 2, column quantity, value &#x27;0&#x27;: Quantity must be at least 1" in html
    assert "row 3, column placed_on" in html
    assert "Confirm import" not in html
    assert "csv_import_orders" not in admin_client_logged_in.session
    assert not PurchaseOrder.objects.exists()


@pytest.mark.parametrize(
    ("content", "says"),
    [
        ("po_number\nPO-1,Société\n".encode("latin-1"), "not UTF-8 text"),
        (b"PK\x03\x04\x14\x00", "spreadsheet workbook"),
        (b"", "The submitted file is empty."),  # Django's own check, before ours
    ],
)
def test_admin_upload_of_a_bad_file_says_why(
    admin_client_logged_in: Any, content: bytes, says: str
) -> None:
    response = _upload(admin_client_logged_in, IMPORT_ORDERS, content)
    assert response.status_code == 200
    assert says in response.content.decode()
    assert "Confirm import" not in response.content.decode()


@pytest.mark.parametrize(
    ("setting", "says"),
    [
        # Dropped as it uploads (orders.uploads), and said by the form.
        ("IMPORT_MAX_BYTES", "imports are limited to 100\xa0bytes (IMPORT_MAX_BYTES)"),
        # Counted as the import reads it, and said by the preview.
        ("IMPORT_MAX_ROWS", "The file has more than 100 rows (IMPORT_MAX_ROWS): split it"),
    ],
)
def test_admin_upload_over_a_limit_is_refused(
    admin_client_logged_in: Any, settings: Any, setting: str, says: str
) -> None:
    setattr(settings, setting, 100)
    content = _csv([_order(po_number=f"PO-{n}") for n in range(101)])
    response = _upload(admin_client_logged_in, IMPORT_ORDERS, content)
    html = response.content.decode()
    assert says in html
    assert "Confirm import" not in html
    assert "csv_import_orders" not in admin_client_logged_in.session


def test_admin_upload_over_the_limit_names_its_size_and_the_limit(
    admin_client_logged_in: Any, settings: Any
) -> None:
    settings.IMPORT_MAX_BYTES = 1000
    content = _csv([_order(po_number=f"PO-{n}") for n in range(20)])  # about 2.6 KB
    response = _upload(admin_client_logged_in, IMPORT_ORDERS, content)

    assert response.status_code == 200
    html = response.content.decode()
    # The size is the request's: the file and a few hundred bytes of form around it.
    size = re.search(r"The file is ([\d.]+)\xa0KB; imports are limited to 1000\xa0bytes", html)
    assert size, html
    assert len(content) / 1024 <= float(size.group(1)) <= (len(content) + 1024) / 1024
    assert "Split it into smaller files" in html
    assert "Confirm import" not in html
    assert not PurchaseOrder.objects.exists()


def test_admin_upload_of_exactly_the_limit_is_accepted(
    admin_client_logged_in: Any, settings: Any
) -> None:
    content = _csv([_order()])
    settings.IMPORT_MAX_BYTES = len(content)
    response = _upload(admin_client_logged_in, IMPORT_ORDERS, content)
    assert "Confirm import" in response.content.decode()

    settings.IMPORT_MAX_BYTES = len(content) - 1
    response = _upload(admin_client_logged_in, IMPORT_ORDERS, content)
    assert "imports are limited to" in response.content.decode()


def test_admin_upload_without_a_file_asks_for_one(admin_client_logged_in: Any) -> None:
    response = admin_client_logged_in.post(IMPORT_ORDERS, {})
    assert response.status_code == 200
    assert "Choose a CSV file to upload." in response.content.decode()


class _Recorder(FileUploadHandler):
    """Stands where Django's memory and temporary-file handlers stand, and counts what they
    would have stored."""

    stored = 0

    def receive_data_chunk(self, raw_data: bytes, start: int) -> None:
        _Recorder.stored += len(raw_data)

    def file_complete(self, file_size: int) -> None:
        return None


@pytest.mark.parametrize(
    ("file_bytes", "stored_at_most"),
    [
        # The request says it is far over the limit: dropped before its first byte.
        (200_000, 0),
        # Over by less than a form could add: dropped once the limit is passed, so at most
        # the limit (and one chunk of the stream) was passed on.
        (3_000, 1_000),
    ],
)
def test_the_upload_handler_drops_a_file_over_the_limit_before_storing_it(
    settings: Any, rf: Any, file_bytes: int, stored_at_most: int
) -> None:
    settings.IMPORT_MAX_BYTES = 1_000
    request = rf.post(
        "/upload/",
        {"file": SimpleUploadedFile("big.csv", b"x" * file_bytes), "note": "kept"},
    )
    request.upload_handlers = [SizeLimitUploadHandler(request), _Recorder(request)]
    _Recorder.stored = 0

    assert request.FILES.get("file") is None
    assert request.POST["note"] == "kept"  # the rest of the form (the CSRF token) is read
    rejected = rejected_upload(request, "file")
    assert rejected is not None
    assert rejected.file_name == "big.csv"
    assert rejected.limit == 1_000
    assert rejected.size == int(request.META["CONTENT_LENGTH"])
    assert file_bytes < rejected.size < file_bytes + 1_000
    assert _Recorder.stored <= stored_at_most + 64 * 1024  # Django streams 64 KB chunks
    if stored_at_most == 0:
        assert _Recorder.stored == 0


def test_the_upload_settings_keep_requests_bounded() -> None:
    from django.conf import settings

    assert settings.FILE_UPLOAD_HANDLERS[0] == "orders.uploads.SizeLimitUploadHandler"
    assert settings.IMPORT_MAX_BYTES == 10 * 1024 * 1024
    # Files over this go to a temporary file instead of memory; form fields are capped.
    assert settings.FILE_UPLOAD_MAX_MEMORY_SIZE <= settings.IMPORT_MAX_BYTES
    assert settings.DATA_UPLOAD_MAX_MEMORY_SIZE is not None
    assert settings.DATA_UPLOAD_MAX_NUMBER_FIELDS is not None


def test_confirm_reports_what_changed_since_the_preview(admin_client_logged_in: Any) -> None:
    preview = _upload(admin_client_logged_in, IMPORT_ORDERS, _csv([_order()]))
    load_demo()  # meanwhile PO-2023-0412 is recorded, in another currency
    PurchaseOrder.objects.filter(po_number="PO-2023-0412").update(currency="EUR")
    before = _table_counts()

    response = admin_client_logged_in.post(IMPORT_ORDERS, {"token": preview.context["token"]})

    assert response.status_code == 200
    assert "already recorded with currency &#x27;EUR&#x27;" in response.content.decode()
    assert "Confirm import" not in response.content.decode()
    assert "csv_import_orders" not in admin_client_logged_in.session
    assert _table_counts() == before


def test_admin_quotes_upload_adds_a_line_quote(admin_client_logged_in: Any) -> None:
    load_demo()
    content = _quotes_csv(("PO-2023-0405", "2023-06-02", "2023-09-01", "A100s", "A100 80GB SXM"))
    preview = _upload(admin_client_logged_in, IMPORT_QUOTES, content, "requotes.csv")
    assert preview.context["counts"] == [("quotes", 1, 0)]

    admin_client_logged_in.post(IMPORT_QUOTES, {"token": preview.context["token"]})

    quote = DeliveryQuote.objects.get(delivery_date=D("2023-09-01"))
    assert quote.line.gpu_model.name == "A100 80GB SXM"
    assert quote.source == "CSV import requotes.csv"


IMPORT_PRICES = reverse("admin:orders_pricequote_import_prices")
PRICE_CHANGELIST = reverse("admin:orders_pricequote_changelist")


def test_admin_price_sheet_upload_previews_then_imports(admin_client_logged_in: Any) -> None:
    load_demo()
    assert (
        f'href="{IMPORT_PRICES}"' in admin_client_logged_in.get(PRICE_CHANGELIST).content.decode()
    )
    content = (
        b"vendor,gpu_model,unit_price,currency,quoted_on,note\r\n"
        b"northwind servers,H100 SXM,43000.00,USD,2023-08-01,list price\r\n"
    )
    preview = _upload(admin_client_logged_in, IMPORT_PRICES, content, "prices.csv")
    assert preview.context["counts"] == [("price quotes", 1, 0)]
    before = PriceQuote.objects.count()

    done = admin_client_logged_in.post(IMPORT_PRICES, {"token": preview.context["token"]})

    assert done.status_code == 302
    assert done["Location"] == PRICE_CHANGELIST
    assert PriceQuote.objects.count() == before + 1
    price = PriceQuote.objects.get(quoted_on=D("2023-08-01"), gpu_model__name="H100 SXM")
    assert (price.vendor.name, price.unit_price, price.source) == (
        "Northwind Servers",
        Decimal("43000.00"),
        PriceQuote.Source.IMPORT,
    )


def test_only_staff_who_may_add_prices_may_import_a_price_sheet(client: Any) -> None:
    assert (
        _staff(client, "add_purchaseorder", "add_deliveryquote").get(IMPORT_PRICES).status_code
        == 403
    )
    assert _staff(client, "add_pricequote", "view_pricequote").get(IMPORT_PRICES).status_code == 200


def test_only_staff_with_the_add_permission_may_import(client: Any) -> None:
    quotes_only = _staff(client, "add_deliveryquote", "view_purchaseorder")
    assert quotes_only.get(IMPORT_ORDERS).status_code == 403
    assert _upload(quotes_only, IMPORT_ORDERS, _csv([_order()])).status_code == 403
    assert quotes_only.post(IMPORT_ORDERS, {"token": "x"}).status_code == 403
    assert quotes_only.get(IMPORT_QUOTES).status_code == 200
    html = quotes_only.get(CHANGELIST).content.decode()
    assert IMPORT_QUOTES in html
    assert IMPORT_ORDERS not in html

    orders_only = _staff(client, "add_purchaseorder")
    assert orders_only.get(IMPORT_ORDERS).status_code == 200
    assert orders_only.get(IMPORT_QUOTES).status_code == 403

    # A buyer adds orders and quotes, but a file could write to anyone's orders.
    client.force_login(UserFactory(is_staff=True, role=Role.BUYER))
    assert client.get(IMPORT_ORDERS).status_code == 403
    assert client.get(IMPORT_QUOTES).status_code == 403
    html = client.get(CHANGELIST).content.decode()
    assert IMPORT_ORDERS not in html
    assert IMPORT_QUOTES not in html

    client.force_login(UserFactory(is_staff=False))
    assert client.get(IMPORT_ORDERS).status_code == 302  # to the admin login
    assert not PurchaseOrder.objects.exists()


def test_rows_without_a_po_number_are_each_reported_once() -> None:
    rows = [_order(po_number=""), _order(po_number="", vendor="Other", quantity="-1")]
    report = orders_import(content=_csv(rows))
    assert [(e.row, e.column) for e in report.errors] == [
        (2, "po_number"),
        (3, "po_number"),
        (3, "quantity"),
    ]


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_imports_of_one_file_at_once_record_it_once() -> None:
    """Both check the file before either writes; the database's unique constraints make the
    slower one fail whole, with a message, instead of recording anything twice."""
    content = _csv(_two_orders())
    reports = run_at_once(lambda: orders_import(content=content))

    assert all(isinstance(r, ImportReport) for r in reports), reports
    assert PurchaseOrder.objects.count() == 2
    assert OrderLine.objects.count() == 3
    assert DeliveryQuote.objects.count() == 1
    assert Vendor.objects.count() == 2
    failed = [r for r in reports if not r.ok]
    for report in failed:
        assert "The database refused the import, so nothing was written" in str(report.errors[0])
    assert len(failed) + sum(r.ok and r.created["orders"] == 2 for r in reports) == 2


@pytest.mark.django_db(transaction=True)
def test_a_write_refused_by_the_database_midway_leaves_nothing_behind(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Vendors, GPU models, buyers, orders and lines are inserted, then the quotes' insert
    breaks a unique constraint (another import recorded the same quote since the file was
    checked): the import's one transaction takes every row back, audit history too."""
    real_insert_new = bulk.insert_new
    inserted: list[str] = []

    def insert_new(objs: Any, **kwargs: Any) -> None:
        if objs and isinstance(objs[0], DeliveryQuote):
            assert {"PurchaseOrder", "OrderLine"} <= set(inserted)  # the failure is midway
            quote = objs[0]
            DeliveryQuote.objects.bulk_create(  # what the other import wrote meanwhile
                [
                    DeliveryQuote(
                        order_id=quote.order.pk,
                        quoted_on=quote.quoted_on,
                        delivery_date=quote.delivery_date,
                    )
                ]
            )
        real_insert_new(objs, **kwargs)
        inserted.append(type(objs[0]).__name__ if objs else "")

    monkeypatch.setattr(bulk, "insert_new", insert_new)
    before = _table_counts()

    report = orders_import(content=_csv(_two_orders()))

    assert "The database refused the import, so nothing was written" in str(_only_error(report))
    assert _table_counts() == before


_CSV_HEAD = ",".join(ORDER_HEADER) + "\n"
_CSVISH = st.text(alphabet=st.sampled_from(list(',"\r\n \t-.:@0123456789PO-abcé\ufeff\x00')))


@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.one_of(
        st.binary(max_size=300),
        _CSVISH.map(str.encode),
        _CSVISH.map(lambda body: (_CSV_HEAD + body).encode()),
        _CSVISH.map(lambda body: ("po_number,quoted_on,delivery_date,note\n" + body).encode()),
    )
)
def test_any_file_gives_a_report_never_a_traceback(content: bytes) -> None:
    for importer in (orders_import, quotes_import):
        report = importer(content=content, dry_run=True)
        assert all(str(error) for error in report.errors)
