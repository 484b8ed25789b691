"""CSV exports: the contract (headers, one known row), Excel safety, streaming at a fixed query
count, and who may export from the admin."""

from __future__ import annotations

import csv
import io
import random
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders import alerts, exports, services
from orders.csv_format import ORDER_COLUMNS, ORDER_DERIVED, QUOTE_COLUMNS
from orders.demo import load_demo
from orders.models import DeliveryQuote, PurchaseOrder, SlipAlert
from tests.conftest import ON_POSTGRES
from tests.factories import (
    NO_ROLE,
    GpuModelFactory,
    OrderLineFactory,
    PurchaseOrderFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db

D = date.fromisoformat
CHANGELIST = reverse("admin:orders_purchaseorder_changelist")
EXPORT = reverse("admin:orders_purchaseorder_export_csv")
EXPORT_QUOTES = reverse("admin:orders_purchaseorder_export_quotes_csv")

# PO-2023-0412 after a scan on 2023-07-21 with its december_delivery alert acknowledged.
PO_0412 = {
    "po_number": "PO-2023-0412",
    "vendor": "Pacific Silicon Distribution",
    "buyer_email": "alice@gpu-buyers.example",
    "status": "confirmed",
    "gpu_model": "A100 80GB SXM",
    "quantity": "384",
    "unit_price": "10000.00",
    "currency": "USD",
    "placed_on": "2023-04-14",
    "need_by": "2023-09-30",
    "baseline_delivery_date": "2023-05-15",
    "current_delivery_date": "2023-12-15",
    "baseline_lead_days": "31",
    "current_lead_days": "245",
    "slip_days": "214",
    "requote_count": "2",
    "open_alerts": "lead_time_multiplied;lead_time_over_limit;past_need_by",
}


def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def _records(text: str) -> list[dict[str, str]]:
    header, *rows = _read(text)
    return [dict(zip(header, row, strict=True)) for row in rows]


def _command(name: str, *args: str) -> str:
    out = StringIO()
    call_command(name, *args, stdout=out)
    return out.getvalue()


def _body(response: Any) -> str:
    assert response.status_code == 200, response
    assert response.streaming
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="')
    return b"".join(response.streaming_content).decode("utf-8")


@pytest.fixture
def demo() -> None:
    load_demo()
    alerts.scan_orders(today=D("2023-07-21"))
    december = SlipAlert.objects.get(order__po_number="PO-2023-0412", code="december_delivery")
    alerts.alerts_acknowledge(alert_ids=[december.pk], user=None)


# --- The contract --------------------------------------------------------------------------


def test_orders_file_header_and_the_demo_order_pushed_to_december(demo: None) -> None:
    text = _command("export_orders")
    assert text.splitlines()[0] == ",".join(ORDER_COLUMNS)
    rows = {r["po_number"]: r for r in _records(text) if r["gpu_model"] == "A100 80GB SXM"}
    assert rows["PO-2023-0412"] == PO_0412
    assert text.endswith("\r\n")


def test_lines_of_a_split_shipment_have_their_own_figures(demo: None) -> None:
    """The semantics of OrderLine.objects.all(): a line-level re-quote moves only
    its line; the order-level quote still applies to the other one."""
    rows = [r for r in _records(_command("export_orders")) if r["po_number"] == "PO-2023-0405"]
    columns = ("gpu_model", "baseline_delivery_date", "current_delivery_date", "slip_days")
    figures = [tuple(r[c] for c in (*columns, "requote_count")) for r in rows]
    assert figures == [
        ("A100 80GB SXM", "2023-05-08", "2023-07-14", "67", "1"),
        ("A10", "2023-05-08", "2023-05-08", "0", "0"),
    ]
    # Alerts belong to the order: both lines show them.
    assert rows[0]["open_alerts"] == rows[1]["open_alerts"] != ""


def test_missing_values_are_empty_cells(demo: None) -> None:
    (draft,) = [r for r in _records(_command("export_orders")) if r["po_number"] == "PO-2023-0510"]
    assert draft["need_by"] == ""
    for column in ORDER_COLUMNS[ORDER_COLUMNS.index("baseline_delivery_date") :]:
        assert draft[column] == ("0" if column == "requote_count" else ""), column


def test_open_alerts_are_distinct_sorted_and_unacknowledged() -> None:
    order = PurchaseOrderFactory(need_by=D("2023-05-01"))
    OrderLineFactory(order=order)
    for quoted_on, delivery in (("2023-04-14", "2023-05-15"), ("2023-05-01", "2023-09-01")):
        services.quote_add(order=order, quoted_on=D(quoted_on), delivery_date=D(delivery))
        alerts.scan_orders(today=D(quoted_on))  # past_need_by twice, for two quotes

    def open_alerts() -> str:
        return _records(_command("export_orders"))[0]["open_alerts"]

    assert SlipAlert.objects.filter(code="past_need_by").count() == 2
    assert open_alerts() == "lead_time_multiplied;lead_time_over_limit;past_need_by"
    alerts.alerts_acknowledge(
        alert_ids=list(
            SlipAlert.objects.exclude(code="lead_time_over_limit").values_list("pk", flat=True)
        ),
        user=None,
    )
    assert open_alerts() == "lead_time_over_limit"


def test_open_alerts_leave_out_superseded_and_resolved_ones() -> None:
    order = PurchaseOrderFactory(need_by=D("2023-05-01"))
    OrderLineFactory(order=order)
    for quoted_on, delivery in (("2023-04-14", "2023-05-15"), ("2023-04-20", "2023-04-25")):
        services.quote_add(order=order, quoted_on=D(quoted_on), delivery_date=D(delivery))
        alerts.scan_orders(today=D(quoted_on))
    # past_need_by, raised for the first quote, resolved by the second: not open.
    assert SlipAlert.objects.get(code="past_need_by").status == "resolved"
    assert _records(_command("export_orders"))[0]["open_alerts"] == ""
    assert order.lines.with_open_alerts().get().open_alerts == ""


def test_every_line_is_a_row_ordered_by_po_number(demo: None) -> None:
    rows = _records(_command("export_orders"))
    assert len(rows) == 8
    assert [r["po_number"] for r in rows] == sorted(r["po_number"] for r in rows)


def test_quote_history_file(demo: None) -> None:
    text = _command("export_quotes")
    header, *rows = _read(text)
    assert tuple(header) == QUOTE_COLUMNS
    assert len(rows) == DeliveryQuote.objects.count() == 14
    assert [r for r in rows if r[0] == "PO-2023-0405"] == [
        ["PO-2023-0405", "2023-04-05", "2023-05-08", "Both lines in about a month.", ""],
        ["PO-2023-0405", "2023-04-28", "2023-07-14", "A100s split off: mid-July.", "A100 80GB SXM"],
    ]
    assert rows == sorted(rows, key=lambda r: (r[0], r[1]))


def test_quotes_of_one_day_keep_entry_order_and_exports_are_byte_stable() -> None:
    order = PurchaseOrderFactory(po_number="PO-SAME-DAY")
    for delivery in ("2023-07-14", "2023-05-15", "2023-06-01"):
        services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D(delivery))
    text = _command("export_quotes")
    assert [r[2] for r in _read(text)[1:]] == ["2023-07-14", "2023-05-15", "2023-06-01"]
    assert _command("export_quotes") == text


def _random_quotes(
    rng: random.Random, order: Any, lines: list[Any], *, count: int, steps: list[int], days: int
) -> None:
    """`count` quotes for the order or one of its lines, `steps` days apart (0: same-day
    quotes), each for delivery up to `days` after it."""
    quoted_on = order.placed_on
    for _ in range(count):
        quoted_on += timedelta(days=rng.choice(steps))
        line = rng.choice([None, *lines])
        delivery = quoted_on + timedelta(days=rng.randint(0, days))
        if not DeliveryQuote.objects.filter(
            order=order, line=line, quoted_on=quoted_on, delivery_date=delivery
        ).exists():
            services.quote_add(order=order, line=line, quoted_on=quoted_on, delivery_date=delivery)


def _scan_and_acknowledge_some(rng: random.Random, *, today: date) -> None:
    """Scan, acknowledge some alerts, and close some others (superseded or resolved, as a
    later scan would), so every kind of alert is there and only open ones count."""
    alerts.scan_orders(today=today)
    acknowledged = [a.pk for a in SlipAlert.objects.all() if rng.random() < 0.3]
    alerts.alerts_acknowledge(alert_ids=acknowledged, user=None)
    for status in (SlipAlert.Status.SUPERSEDED, SlipAlert.Status.RESOLVED):
        closed = [a.pk for a in SlipAlert.objects.filter(status="open") if rng.random() < 0.2]
        SlipAlert.objects.filter(pk__in=closed).update(status=status, closed_at=timezone.now())


def test_rows_equal_the_stored_line_columns_on_random_orders() -> None:
    """The export writes each line's stored figures and with_open_alerts()'s codes, as the
    ORM reads them. Random orders: no lines or several, order- and line-level
    quotes (same-day ones too), none, acknowledged alerts, text that needs quotes or `'`."""
    rng = random.Random(20231126)
    gpus = [GpuModelFactory(name=n) for n in ("A100 80GB SXM", "H100, SXM", '=A10 "x"')]
    vendors = [VendorFactory(name=n) for n in ("Plain", "@Vendor, Inc.", 'Say "hi"; there')]
    for n in range(60):
        placed = D("2023-03-01") + timedelta(days=rng.randint(0, 60))
        prefix = rng.choice(["PO-", "-PO-", "'+PO-", "PO,"])
        order = PurchaseOrderFactory(
            po_number=f"{prefix}{rng.randint(0, 999):03d}-{n}",
            vendor=rng.choice(vendors),
            placed_on=placed,
            need_by=rng.choice([None, placed + timedelta(days=rng.randint(0, 120))]),
        )
        lines = [
            OrderLineFactory(
                order=order,
                gpu_model=g,
                quantity=rng.randint(1, 500),
                unit_price=Decimal(rng.randint(0, 10**6)) / 100,
            )
            for g in rng.sample(gpus, rng.randint(0, 3))
        ]
        _random_quotes(rng, order, lines, count=rng.randint(0, 5), steps=[0, 0, 3, 12], days=250)
    _scan_and_acknowledge_some(rng, today=D("2023-07-21"))

    fields = (
        "order__po_number",
        "order__vendor__name",
        "order__buyer__email",
        "order__status",
        "gpu_model__name",
        "quantity",
        "unit_price",
        "order__currency",
        "order__placed_on",
        "order__need_by",
        *ORDER_DERIVED,
    )
    for orders in (PurchaseOrder.objects.all(), PurchaseOrder.objects.filter(need_by=None)):
        text_columns = [c in exports.TEXT_COLUMNS for c in ORDER_COLUMNS]
        expected = [
            [
                exports.neutralise(exports._cell(v)) if is_text else exports._cell(v)
                for v, is_text in zip(values, text_columns, strict=True)
            ]
            for values in exports.order_lines(orders).values_list(*fields)
        ]
        # The data has lines with and without quotes, and with and without open alerts.
        assert {r[10] == "" for r in expected} == {r[-1] == "" for r in expected} == {True, False}
        assert list(exports.order_rows(orders)) == expected
        written = io.StringIO(newline="")
        csv.writer(written).writerows([ORDER_COLUMNS, *expected])
        assert "".join(exports.orders_csv(orders)) == written.getvalue()


def test_every_line_of_the_selected_orders_whatever_the_queryset_joins(demo: None) -> None:
    """A queryset filtering through lines selects orders; their rows are all their lines, once
    each, as for a plain one."""
    split = PurchaseOrder.objects.filter(po_number="PO-2023-0405")
    gpus = ["A10", "A100 80GB SXM"]
    through_lines = PurchaseOrder.objects.filter(lines__gpu_model__name__in=gpus)
    assert through_lines.filter(po_number="PO-2023-0405").count() == 2  # a join, one row a line
    rows = list(exports.order_rows(through_lines.filter(po_number="PO-2023-0405")))
    assert rows == list(exports.order_rows(split))
    assert [r[4] for r in rows] == ["A100 80GB SXM", "A10"]
    everything = list(exports.order_rows(PurchaseOrder.objects.all()))
    assert list(exports.order_rows(PurchaseOrder.objects.values("pk"))) == everything


# --- The orders file on PostgreSQL: one COPY -----------------------------------------------


def _python_file(orders: Any) -> str:
    """The orders file as the Python walk (the SQLite path, and the reference) writes it."""
    rows = exports.order_rows(orders, csv_fields=True)
    return "".join(exports.csv_lines(rows, header=ORDER_COLUMNS, csv_fields=True))


# Text PostgreSQL's COPY escapes (backslash; tab, CR, LF below), \N (its NULL marker), text
# that needs neutralise() or CSV quotes or both, and text beyond ASCII.
_AWKWARD = [
    "Plain",
    "=cmd|' /C calc'!A0",
    "'@twice",
    "back\\slash\\",
    "\\N",
    'say "hi", then go',
    "-minus, comma",
    "Ünïcødé 東京 🚀",
    " spaced ",
]
# Names and PO numbers are one line (orders.text); a user's email address is not checked by
# the database, so it carries the control characters COPY escapes.
_CONTROL = ["tab\there", "line\nbreak", "cr\rlf\r\n", "\tlead"]


@pytest.mark.postgres
def test_postgres_copy_writes_what_the_python_walk_writes() -> None:
    """On PostgreSQL one COPY writes the orders file (exports._orders_file_sql); it must be
    the Python walk's file byte for byte, for awkward text and every schedule shape, and
    for each kind of selection."""
    rng = random.Random(20261126)
    gpus = [GpuModelFactory(name=f"{text} {i}") for i, text in enumerate(_AWKWARD)]
    vendors = [VendorFactory(name=f"{text} {i}") for i, text in enumerate(_AWKWARD)]
    buyers = [UserFactory(email=""), UserFactory(email='"odd, but stored"@example.com')]
    buyers += [UserFactory(email=f"{text}@example.com") for text in _AWKWARD[:4] + _CONTROL]
    for n in range(80):
        placed = D("2023-03-01") + timedelta(days=rng.randint(0, 60))
        order = PurchaseOrderFactory(
            po_number=f"{rng.choice(_AWKWARD)}{n}",
            vendor=rng.choice(vendors),
            buyer=rng.choice(buyers),
            status=rng.choice(["placed", "confirmed", "received", "cancelled"]),
            placed_on=placed,
            need_by=rng.choice([None, placed + timedelta(days=rng.randint(0, 120))]),
        )
        lines = [
            OrderLineFactory(
                order=order,
                gpu_model=gpu,
                quantity=rng.choice([1, 384, 2_147_483_647]),
                unit_price=rng.choice([Decimal("0.00"), Decimal("10000.50"), Decimal("1E+11")]),
            )
            for gpu in rng.sample(gpus, rng.choice([0, 1, 1, 2, 3]))
        ]
        count = rng.choice([0, 1, 3, 5])
        _random_quotes(rng, order, lines, count=count, steps=[0, 0, 2, 30], days=300)
    _scan_and_acknowledge_some(rng, today=D("2023-12-21"))
    everything = PurchaseOrder.objects.all()
    for orders in (
        everything,
        PurchaseOrder.objects.filter(status="confirmed"),
        PurchaseOrder.objects.filter(need_by=None, placed_on__gte=D("2023-04-01")),
        PurchaseOrder.objects.filter(vendor__name__startswith="="),  # a join: id IN (...)
        PurchaseOrder.objects.filter(lines__gpu_model__in=gpus[:3]),  # one row per line
        PurchaseOrder.objects.with_gpu_model(gpus[0].pk),  # no join, a subquery: Exists()
        PurchaseOrder.objects.slipping(),  # annotations
        PurchaseOrder.objects.values("pk"),
        PurchaseOrder.objects.order_by("-placed_on"),
        PurchaseOrder.objects.filter(pk__in=[]),
        PurchaseOrder.objects.none(),
    ):
        written = "".join(exports.orders_csv(orders))
        assert written == _python_file(orders), orders.query
        # And the CSV reads back as the cells the Python walk computes.
        assert _read(written)[1:] == list(exports.order_rows(orders))
    rows = _read("".join(exports.orders_csv(everything)))[1:]
    assert len(rows) > 100
    assert len({row[-1] for row in rows}) > 3  # several combinations of open alerts
    assert {row[10] == "" for row in rows} == {True, False}  # lines with quotes and without


@pytest.mark.postgres
def test_postgres_copy_ends_cleanly_when_the_reader_stops(monkeypatch: Any) -> None:
    """A client that goes away mid-download closes the stream: the COPY is abandoned and the
    connection is usable, with no transaction left open by the export."""
    monkeypatch.setattr(exports, "BLOCK_ROWS", 2)
    _orders(5)
    savepoints = list(connection.savepoint_ids)
    text = exports.orders_csv(PurchaseOrder.objects.all())
    first = next(text)
    assert first.startswith("po_number,")
    assert text.rows == 2
    assert connection.savepoint_ids != savepoints  # the export's read is open
    text.close()
    assert connection.savepoint_ids == savepoints
    assert PurchaseOrder.objects.count() == 5
    assert len(_read("".join(exports.orders_csv(PurchaseOrder.objects.all())))) == 1 + 5 * 2


# --- Excel safety ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "written"),
    [
        ('=HYPERLINK("http://x","y")', '\'=HYPERLINK("http://x","y")'),
        ("+1 (555) 0100", "'+1 (555) 0100"),
        ("-2 weeks", "'-2 weeks"),
        ("@SUM(A1:A2)", "'@SUM(A1:A2)"),
        ("\tcmd", "'\tcmd"),
        ("\rcmd", "'\rcmd"),
        ("'=already quoted", "''=already quoted"),  # one ' is always the tracker's to strip
        ("it's fine", "it's fine"),
        ("A100 = fast", "A100 = fast"),
        ("", ""),
    ],
)
def test_neutralise(text: str, written: str) -> None:
    assert exports.neutralise(text) == written


def test_formulas_in_text_cells_are_neutralised_numbers_are_not() -> None:
    vendor = VendorFactory(name='=HYPERLINK("http://evil.example","Click")')
    order = PurchaseOrderFactory(vendor=vendor, po_number="@PO-1", placed_on=D("2023-04-14"))
    OrderLineFactory(order=order, gpu_model=GpuModelFactory(name="-A100"))
    # A later quote with an earlier date: a negative slip, which must stay a number.
    services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
    services.quote_add(order=order, quoted_on=D("2023-04-20"), delivery_date=D("2023-05-12"))
    # quote_add trims notes, and a note cannot hold a tab or CR at all (orders.text).
    notes = ["+cmd", "-cmd", "@cmd", "=1+2"]
    for day, note in enumerate(notes, start=21):
        DeliveryQuote.objects.create(
            order=order, quoted_on=D(f"2023-04-{day}"), delivery_date=D("2023-05-12"), note=note
        )

    (row,) = _records(_command("export_orders"))
    assert row["vendor"] == "'" + vendor.name
    assert (row["po_number"], row["gpu_model"]) == ("'@PO-1", "'-A100")
    assert (row["slip_days"], row["requote_count"]) == ("-3", "5")

    quotes = _read(_command("export_quotes"))[1:]
    assert [q[3] for q in quotes] == ["", ""] + ["'" + note for note in notes]
    assert {q[0] for q in quotes} == {"'@PO-1"}


_FORMULA_STARTS = ["=", "+", "-", "@", "\t", "\r", "'=", "''+"]


def test_the_python_walk_neutralises_every_formula_start_in_every_text_cell() -> None:
    """The orders file as SQLite writes it (order_rows with csv_fields: the _PLAIN_TEXT
    shortcut, then neutralise and quoting): each text cell starting like a formula gets its
    `'`, whatever the start and the column; the PostgreSQL COPY is held to the same file
    by test_postgres_copy_writes_what_the_python_walk_writes."""
    texts = {}
    for n, start in enumerate(_FORMULA_STARTS):
        # Names are one line of text (a tab or CR is refused there); an address can hold one.
        name_start = "=" if start in ("\t", "\r") else start
        vendor = VendorFactory(name=f"{name_start}Vendor {n}")
        buyer = UserFactory(email=f"{start}buyer{n}@example.com")
        order = PurchaseOrderFactory(po_number=f"{name_start}PO-{n}", vendor=vendor, buyer=buyer)
        gpu = GpuModelFactory(name=f"{name_start}GPU {n} 80GB")
        OrderLineFactory(order=order, gpu_model=gpu)
        texts[order.po_number] = (order.po_number, vendor.name, buyer.email, gpu.name)
    orders = PurchaseOrder.objects.all()
    walked = "".join(
        exports.csv_lines(
            exports.order_rows(orders, csv_fields=True), header=ORDER_COLUMNS, csv_fields=True
        )
    )

    for written in (walked, "".join(exports.orders_csv(orders))):  # orders_csv: COPY on PostgreSQL
        rows = _records(written)
        assert len(rows) == len(_FORMULA_STARTS)
        for row in rows:
            po, vendor, email, gpu = texts[row["po_number"][1:]]
            cells = (row["po_number"], row["vendor"], row["buyer_email"], row["gpu_model"])
            assert cells == ("'" + po, "'" + vendor, "'" + email, "'" + gpu)


def test_bom_option() -> None:
    PurchaseOrderFactory()
    assert _command("export_orders", "--bom").startswith("\ufeffpo_number,")
    assert _command("export_quotes", "--bom").startswith("\ufeffpo_number,")
    assert _command("export_orders").startswith("po_number,")


# --- Commands -------------------------------------------------------------------------------


def test_commands_write_a_file(demo: None, tmp_path: Path) -> None:
    target = tmp_path / "orders.csv"
    out = _command("export_orders", "--output", str(target), "--bom")
    assert out == f"Wrote 8 order line(s) to {target}.\n"
    data = target.read_bytes()
    assert data.startswith(b"\xef\xbb\xbfpo_number,")
    assert data.decode("utf-8-sig") == _command("export_orders")

    target = tmp_path / "quotes.csv"
    assert _command("export_quotes", "--output", str(target)) == (
        f"Wrote 14 quote(s) to {target}.\n"
    )
    assert target.read_bytes().decode("utf-8") == _command("export_quotes")


def test_unwritable_output_is_a_command_error(tmp_path: Path) -> None:
    with pytest.raises(CommandError, match="Cannot write"):
        call_command("export_orders", "--output", str(tmp_path / "missing" / "o.csv"))


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--vendor", "flipcard gpu resale"], {"PO-2023-0418", "PO-2023-0502"}),
        (["--status", "partially_received"], {"PO-2023-0418", "PO-2023-0405"}),
        (
            ["--slipping"],
            {"PO-2023-0412", "PO-2023-0320", "PO-2023-0418", "PO-2023-0405", "PO-2023-0502"},
        ),
        (
            ["--slipping", "--vendor", "FLIPCARD GPU RESALE", "--status", "cancelled"],
            {"PO-2023-0502"},
        ),
    ],
)
def test_export_orders_filters(demo: None, args: list[str], expected: set[str]) -> None:
    rows = _records(_command("export_orders", *args))
    assert {r["po_number"] for r in rows} == expected


def test_export_orders_refuses_an_unknown_status_or_vendor(demo: None) -> None:
    with pytest.raises(CommandError, match=r'--status "late" is not an order status.*confirmed'):
        call_command("export_orders", "--status", "late")
    with pytest.raises(CommandError, match='--vendor "Nobody": no vendor has that name'):
        call_command("export_orders", "--vendor", "Nobody")


# --- Fixed query count ----------------------------------------------------------------------

# The orders file: one COPY on PostgreSQL; lines and alerts walked side by side elsewhere.
ORDERS_FILE_READS = 1 if ON_POSTGRES else 2


def _orders(n: int) -> None:
    """n orders of two lines each, with order- and line-level quotes and alerts."""
    vendor, buyer = VendorFactory(), UserFactory()
    gpus = [GpuModelFactory(name=name) for name in ("A100 80GB SXM", "H100 SXM")]
    for _ in range(n):
        order = PurchaseOrderFactory(vendor=vendor, buyer=buyer, need_by=D("2023-06-01"))
        line = OrderLineFactory(order=order, gpu_model=gpus[0])
        OrderLineFactory(order=order, gpu_model=gpus[1], quantity=2)
        services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
        services.quote_add(
            order=order, line=line, quoted_on=D("2023-05-01"), delivery_date=D("2023-08-01")
        )
    alerts.scan_orders(today=D("2023-07-21"))


@pytest.mark.parametrize(
    ("export", "reads"),
    [
        (lambda: list(exports.orders_csv(PurchaseOrder.objects.all())), ORDERS_FILE_READS),
        (lambda: list(exports.quotes_csv(PurchaseOrder.objects.all())), 1),
        (
            lambda: _command("export_orders", "--slipping", "--status", "confirmed"),
            ORDERS_FILE_READS,
        ),
        (lambda: _command("export_quotes"), 1),
    ],
    ids=["orders_csv", "quotes_csv", "export_orders", "export_quotes"],
)
def test_an_export_runs_the_same_queries_for_3_and_60_orders(
    django_assert_num_queries: Any, export: Any, reads: int
) -> None:
    _orders(3)
    with CaptureQueriesContext(connection) as small:
        export()
    # Queries that read rows (PostgreSQL: server-side cursors, COPY); the rest is transaction
    # control (and settings on PostgreSQL).
    reading = ("SELECT", "DECLARE", "COPY")
    selects = [q["sql"] for q in small.captured_queries if q["sql"].startswith(reading)]
    assert len(selects) == reads, selects
    _orders(57)
    with django_assert_num_queries(len(small.captured_queries)):
        export()


@pytest.mark.parametrize("url", [EXPORT, EXPORT_QUOTES])
def test_admin_export_runs_the_same_queries_for_3_and_60_orders(
    admin_client_logged_in: Any, django_assert_num_queries: Any, url: str
) -> None:
    _orders(3)
    with CaptureQueriesContext(connection) as small:
        _body(admin_client_logged_in.get(url, {"slipping": "yes"}))
    _orders(57)
    with django_assert_num_queries(len(small.captured_queries)):
        body = _body(admin_client_logged_in.get(url, {"slipping": "yes"}))
    assert len(_read(body)) == 1 + 60 * 2  # two lines, or two quotes, per order


# --- The admin ------------------------------------------------------------------------------


def _listed(client: Any, params: dict[str, str]) -> set[str]:
    response = client.get(CHANGELIST, params | {"all": ""})
    return {o.po_number for o in response.context["cl"].result_list}


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"slipping": "yes"},
        {"q": "FlipCard"},
        {"status__exact": "partially_received"},
        {"placed_on__month": "3", "placed_on__year": "2023"},
        {"q": "Pacific", "slipping": "no"},
        {"o": "-10", "p": "1"},  # sorted and paged: still every listed order
    ],
)
def test_export_button_exports_what_the_list_shows(
    admin_client_logged_in: Any, demo: None, params: dict[str, str]
) -> None:
    listed = _listed(admin_client_logged_in, params)
    orders = _records(_body(admin_client_logged_in.get(EXPORT, params)))
    assert {r["po_number"] for r in orders} == listed
    quotes = _records(_body(admin_client_logged_in.get(EXPORT_QUOTES, params)))
    assert {r["po_number"] for r in quotes} == listed - {"PO-2023-0510"}  # never quoted


def test_changelist_links_carry_its_filters(admin_client_logged_in: Any, demo: None) -> None:
    html = admin_client_logged_in.get(CHANGELIST, {"q": "FlipCard", "slipping": "yes"}).content
    for url in (EXPORT, EXPORT_QUOTES):
        assert f'href="{url}?q=FlipCard&amp;slipping=yes"'.encode() in html


def test_admin_bom_option(admin_client_logged_in: Any, demo: None) -> None:
    with_bom = b"".join(admin_client_logged_in.get(EXPORT, {"bom": "1", "q": "0412"}))
    assert with_bom.startswith(b"\xef\xbb\xbfpo_number,")
    assert len(_read(with_bom.decode("utf-8-sig"))) == 2
    assert not b"".join(admin_client_logged_in.get(EXPORT_QUOTES)).startswith(b"\xef")


def test_unusable_filters_go_back_to_the_list(admin_client_logged_in: Any) -> None:
    response = admin_client_logged_in.get(EXPORT, {"no_such_field": "1"})
    assert (response.status_code, response["Location"]) == (302, CHANGELIST + "?e=1")


def test_admin_action_exports_the_selected_orders(admin_client_logged_in: Any, demo: None) -> None:
    selected = PurchaseOrder.objects.filter(po_number__in=["PO-2023-0412", "PO-2023-0405"])
    response = admin_client_logged_in.post(
        CHANGELIST,
        {
            "action": "export_selected_orders_csv",
            "_selected_action": [o.pk for o in selected],
        },
    )
    rows = _records(_body(response))
    assert [r["po_number"] for r in rows] == ["PO-2023-0405", "PO-2023-0405", "PO-2023-0412"]
    assert rows[2] == PO_0412


def _staff(*perms: str) -> Any:
    """Staff with exactly these permissions and no role (a buyer's own orders are none)."""
    user = UserFactory(is_staff=True, role=NO_ROLE)
    user.user_permissions.set(Permission.objects.filter(codename__in=perms))
    return user


def test_only_staff_with_view_permission_can_export(client: Any, demo: None) -> None:
    for url in (EXPORT, EXPORT_QUOTES):
        response = client.get(url)
        assert response.status_code == 302
        assert response["Location"].startswith(reverse("admin:login"))

    client.force_login(_staff("view_deliveryquote"))
    assert client.get(EXPORT).status_code == 403
    assert client.get(EXPORT_QUOTES).status_code == 403

    client.force_login(_staff("view_purchaseorder"))
    assert len(_records(_body(client.get(EXPORT)))) == 8
    assert client.get(EXPORT_QUOTES).status_code == 403  # quotes need their own permission
    actions = client.get(CHANGELIST).context["action_form"].fields["action"].choices
    assert ("export_selected_orders_csv", "Export selected orders as CSV") in actions

    client.force_login(_staff("view_purchaseorder", "view_deliveryquote"))
    assert len(_records(_body(client.get(EXPORT_QUOTES)))) == 14


@pytest.mark.django_db(transaction=True)
def test_admin_export_streams_after_the_request_transaction_has_ended(
    admin_client_logged_in: Any,
) -> None:
    """With ATOMIC_REQUESTS the view's transaction commits before the body is read; the rows
    are then read outside it (on PostgreSQL a WITH HOLD server-side cursor)."""
    _orders(3)
    response = admin_client_logged_in.get(EXPORT)
    assert len(_read(_body(response))) == 1 + 3 * 2
