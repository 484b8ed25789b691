"""Hostile CSV files against every import (orders, quotes, prices) through every entry point
(the service, the management command, the admin upload with preview and confirm).

Whatever the file, the outcome is one of two: a clean import, which imported again changes
nothing; or a list of errors, each naming its row (or the file), and not one row written
anywhere. Never an exception, a traceback or a 500. The files come from tests/hostile.py.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.sessions.models import Session
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import CommandError, call_command
from django.db import connection, transaction
from django.test import Client
from django.urls import reverse
from hypothesis import example, given, settings
from hypothesis import strategies as st

from orders.demo import load_demo
from orders.imports import CHUNK, ImportReport, orders_import, prices_import, quotes_import
from orders.models import GpuModel, PurchaseOrder, Vendor
from tests import hostile
from tests.hostile import BAD_INPUT, DEMO, Sheet

pytestmark = pytest.mark.django_db

Importer = Callable[..., ImportReport]


@pytest.fixture
def demo(django_capture_on_commit_callbacks: Any) -> None:
    """The demo data (with its alerts), which valid-looking files refer to."""
    with django_capture_on_commit_callbacks(execute=True):
        load_demo()


def test_the_strategies_know_the_demo_data(demo: None) -> None:
    assert sorted(DEMO.vendors) == sorted(Vendor.objects.values_list("name", flat=True))
    assert sorted(DEMO.gpu_models) == sorted(GpuModel.objects.values_list("name", flat=True))
    assert set(DEMO.buyers) <= set(get_user_model().objects.values_list("email", flat=True))
    recorded = {
        (
            order.po_number,
            order.placed_on,
            tuple(sorted(line.gpu_model.name for line in order.lines.all())),
        )
        for order in PurchaseOrder.objects.prefetch_related("lines__gpu_model")
    }
    assert {(po, placed, tuple(sorted(gpus))) for po, placed, gpus in DEMO.orders} == recorded


@pytest.fixture
def staff_client(admin_user: Any) -> Client:
    """A superuser's browser: a server error is a 500 response, as in production."""
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return client


# --- What every outcome must satisfy -------------------------------------------------------------


def _snapshot() -> dict[str, Any]:
    """The number of rows of every table (one query) and every row of the tracker's tables and
    the users. Sessions change with every request, so they are left out."""
    tables = sorted(m._meta.db_table for m in apps.get_models() if m is not Session)
    counts = ", ".join(f"(SELECT COUNT(*) FROM {connection.ops.quote_name(t)})" for t in tables)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {counts}")
        row_counts = dict(zip(tables, cursor.fetchone(), strict=True))
    watched = [*apps.get_app_config("orders").get_models(), get_user_model()]
    return {
        "counts": row_counts,
        "rows": {
            m._meta.label: list(m._default_manager.order_by("pk").values_list()) for m in watched
        },
    }


@contextmanager
def _rolled_back() -> Iterator[None]:
    """Each example starts from the demo data: what it wrote is undone when it ends."""
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _assert_errors_are_listed(report: ImportReport, sheet: Sheet) -> None:
    assert report.errors
    for error in report.errors:
        text = str(error)
        assert error.row is None or error.row >= 1, text  # row 1 is the header
        assert "\x1b" not in text, "a control character reaches the operator's terminal"
        assert error.message.strip(), text
        assert "Traceback" not in text
    if sheet.mutated_row is not None:
        # A file right but for one cell: only that cell's row, or rows of the same PO (a
        # conflict is reported on the later row), may be wrong. File-level errors (a cell
        # that breaks the CSV itself) name no row.
        rows = {e.row for e in report.errors} - {None}
        assert rows <= sheet.related_rows, (sheet.how, [str(e) for e in report.errors])


def _assert_clean_outcome(
    importer: Importer, sheet: Sheet, before: dict[str, Any], run: Callable[[], ImportReport]
) -> ImportReport:
    """`run` imported the sheet: check the outcome, and that importing it again changes
    nothing when it succeeded."""
    report = run()
    assert isinstance(report, ImportReport)
    if not report.ok:
        _assert_errors_are_listed(report, sheet)
        assert _snapshot() == before, "a failed import wrote something"
        return report
    after = _snapshot()
    again = importer(content=sheet.content)
    assert again.ok, [str(e) for e in again.errors]
    assert not any(again.created.values()), again.created
    assert _snapshot() == after, "importing the same file again changed something"
    return report


# --- The strategies, one per import --------------------------------------------------------------

KINDS: dict[str, tuple[Importer, Any, tuple[str, ...], str]] = {
    "orders": (orders_import, hostile.order_rows, hostile.ORDER_HEADER, "po_number"),
    "quotes": (quotes_import, hostile.quote_rows, hostile.QUOTE_HEADER, "po_number"),
    "prices": (prices_import, hostile.price_rows, hostile.PRICE_HEADER, "vendor"),
}


def _kind_and(strategy: Callable[[str], st.SearchStrategy[Any]]) -> st.SearchStrategy[Any]:
    """(kind, what `strategy(kind)` draws), for any of the three imports. One test covers all
    three so the demo data is loaded once per entry point, not once per import."""
    return st.sampled_from(sorted(KINDS)).flatmap(
        lambda kind: strategy(kind).map(lambda x: (kind, x))
    )


def _sheets(kind: str) -> st.SearchStrategy[Sheet]:
    _, rows, header, key = KINDS[kind]
    return hostile.sheets(rows(DEMO), header, key)


def _correct_rows(kind: str) -> st.SearchStrategy[list[list[str]]]:
    return KINDS[kind][1](DEMO)


# Three imports per test: three times the profile's examples.
EACH_KIND = settings(BAD_INPUT, max_examples=BAD_INPUT.max_examples * 3)
# Files that crashed an import once; each stays as an example (see the commit that fixed it).
REGRESSIONS: list[tuple[str, Sheet]] = [
    # A typo far below or above a vendor's other prices: the rise over the window's low did not
    # fit PriceAlert.rise_percent, so the price check after the commit failed on PostgreSQL.
    (
        "prices",
        Sheet(
            b"vendor,gpu_model,unit_price,currency,quoted_on,note\r\n"
            b"FlipCard GPU Resale,H100 SXM,0.01,USD,2023-01-01,\r\n",
            "price 0.01 before a 40,500.00",
        ),
    ),
    (
        "prices",
        Sheet(
            b"vendor,gpu_model,unit_price,currency,quoted_on,note\r\n"
            b"FlipCard GPU Resale,H100 SXM,999999999999.99,USD,2023-05-01,\r\n",
            "price 999,999,999,999.99 after a 40,500.00",
        ),
    ),
    (
        "orders",
        Sheet(
            b"po_number,vendor,buyer_email,gpu_model,quantity,unit_price,currency,placed_on\n"
            b"PO-TYPO,FlipCard GPU Resale,bob@gpu-buyers.example,H100 SXM,1,0.01,USD,2023-04-11\n",
            "an order line charged 0.01 (a price point) a week before a 41,500.00",
        ),
    ),
    # A header name with control characters was printed raw by the command.
    ("orders", Sheet(b"\x01\x0b\x01", "random bytes")),
    ("quotes", Sheet(b"po_number,\x1b[31mred\n", "an escape sequence in the header")),
    # A broken quote in the header row is an error on row 1.
    ("prices", Sheet(b'"', "CSV-ish text")),
]


def _with_regressions(test: Any) -> Any:
    for kind_and_sheet in REGRESSIONS:
        test = example(kind_and_sheet=kind_and_sheet)(test)
    return test


# --- Valid-looking files are valid ---------------------------------------------------------------


@EACH_KIND
@given(kind_and_rows=_kind_and(_correct_rows))
def test_a_correct_generated_sheet_imports_and_reimporting_changes_nothing(
    demo: None, django_capture_on_commit_callbacks: Any, kind_and_rows: tuple[str, list]
) -> None:
    """The generators of valid-looking rows really make valid files: otherwise the mutation
    tests below would only ever test files that were wrong already."""
    kind, body = kind_and_rows
    importer, _, header, _ = KINDS[kind]
    out = io.StringIO()
    csv.writer(out).writerows([header, *body])
    content = out.getvalue().encode()
    with _rolled_back(), django_capture_on_commit_callbacks(execute=True):
        report = importer(content=content)
        assert report.ok, [str(e) for e in report.errors]
        assert report.rows == len(body)
        after = _snapshot()
        again = importer(content=content)
        assert again.ok
        assert not any(again.created.values())
        assert _snapshot() == after


# --- The service ---------------------------------------------------------------------------------


@EACH_KIND
@given(kind_and_sheet=_kind_and(_sheets))
@_with_regressions
def test_any_sheet_through_the_service_imports_cleanly_or_lists_its_errors(
    demo: None, django_capture_on_commit_callbacks: Any, kind_and_sheet: tuple[str, Sheet]
) -> None:
    kind, sheet = kind_and_sheet
    importer = KINDS[kind][0]
    with _rolled_back():
        before = _snapshot()
        # The slip and price checks run after the commit, as in production (eager Celery):
        # a date the import accepts must not crash them either.
        with django_capture_on_commit_callbacks(execute=True):
            _assert_clean_outcome(
                importer, sheet, before, lambda: importer(content=sheet.content, filename="x.csv")
            )


# --- The management commands ---------------------------------------------------------------------

COMMANDS = {"orders": "import_orders", "quotes": "import_quotes", "prices": "import_prices"}


@EACH_KIND
@given(kind_and_sheet=_kind_and(_sheets))
@_with_regressions
def test_any_sheet_through_the_command_imports_or_exits_non_zero_listing_errors(
    demo: None,
    django_capture_on_commit_callbacks: Any,
    tmp_path: Path,
    kind_and_sheet: tuple[str, Sheet],
) -> None:
    kind, sheet = kind_and_sheet
    importer = KINDS[kind][0]
    path = tmp_path / "sheet.csv"
    path.write_bytes(sheet.content)
    with _rolled_back():
        before = _snapshot()
        out, err = io.StringIO(), io.StringIO()
        failure: CommandError | None = None
        with django_capture_on_commit_callbacks(execute=True):
            try:
                call_command(COMMANDS[kind], str(path), stdout=out, stderr=err)
            except CommandError as exc:
                failure = exc
        if failure is not None:
            # manage.py prints "CommandError: <message>" and exits with this status.
            assert failure.returncode != 0
            assert "nothing was imported" in str(failure)
            listed = err.getvalue().split("\n")[:-1]  # one line per error, newline-ended
            assert listed, "the errors are printed"
            assert all(line.startswith(("row ", "file")) for line in listed), listed
            assert _snapshot() == before, "a failed import wrote something"
            return
        assert "row(s) read." in out.getvalue()
        after = _snapshot()
        report = importer(content=sheet.content)
        assert report.ok
        assert not any(report.created.values())
        assert _snapshot() == after


# --- The admin upload ----------------------------------------------------------------------------

ADMIN_URLS = {
    "orders": ("admin:orders_purchaseorder_import_orders", "admin:orders_purchaseorder_changelist"),
    "quotes": ("admin:orders_purchaseorder_import_quotes", "admin:orders_purchaseorder_changelist"),
    "prices": ("admin:orders_pricequote_import_prices", "admin:orders_pricequote_changelist"),
}


@EACH_KIND
@given(kind_and_sheet=_kind_and(_sheets))
@_with_regressions
def test_any_sheet_uploaded_in_the_admin_imports_or_lists_its_errors(
    demo: None,
    staff_client: Client,
    django_capture_on_commit_callbacks: Any,
    kind_and_sheet: tuple[str, Sheet],
) -> None:
    kind, sheet = kind_and_sheet
    importer = KINDS[kind][0]
    url, changelist = (reverse(name) for name in ADMIN_URLS[kind])
    with _rolled_back():
        before = _snapshot()
        preview = staff_client.post(
            url, {"file": SimpleUploadedFile("sheet.csv", sheet.content, "text/csv")}
        )
        assert preview.status_code == 200
        html = preview.content.decode()
        assert _snapshot() == before, "a preview wrote something"
        token = preview.context.get("token")
        if token is None:
            report = preview.context.get("report")
            if report is None:  # refused by the form (an empty file)
                assert preview.context["form"].errors
            else:
                _assert_errors_are_listed(report, sheet)
                assert "nothing will be imported" in html
            assert "Confirm import" not in html
            return
        assert "Confirm import" in html
        with django_capture_on_commit_callbacks(execute=True):
            done = staff_client.post(url, {"token": token})
        assert done.status_code == 302, done.content.decode()[:2000]
        assert done["Location"] == changelist
        after = _snapshot()
        again = importer(content=sheet.content)
        assert again.ok, [str(e) for e in again.errors]
        assert not any(again.created.values()), again.created
        assert _snapshot() == after


# --- A long file -------------------------------------------------------------------------------


def test_a_long_sheet_with_one_bad_cell_in_its_last_row_names_that_row_and_writes_nothing(
    demo: None,
) -> None:
    """Longer than one chunk of rows (imports.CHUNK), so the error is found across chunks."""
    header = hostile.ORDER_HEADER
    row = {
        "po_number": "",
        "vendor": "Northwind Servers",
        "buyer_email": "bob@gpu-buyers.example",
        "status": "placed",
        "gpu_model": "A10",
        "quantity": "8",
        "unit_price": "2800.00",
        "currency": "USD",
        "placed_on": "2023-05-02",
        "need_by": "",
        "quoted_on": "2023-05-03",
        "delivery_date": "2023-06-30",
    }
    rows = [
        [(row | {"po_number": f"PO-LONG-{n:05d}"})[column] for column in header]
        for n in range(CHUNK + 1)
    ]
    rows[-1][header.index("quantity")] = "1e3"
    out = io.StringIO()
    csv.writer(out).writerows([header, *rows])
    before = _snapshot()

    report = orders_import(content=out.getvalue().encode())

    assert [(e.row, e.column, e.value) for e in report.errors] == [(CHUNK + 2, "quantity", "1e3")]
    assert report.rows == CHUNK + 1
    assert _snapshot() == before
