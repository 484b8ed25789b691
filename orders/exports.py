"""CSV exports: the one writer behind `manage.py export_orders/export_quotes` and the admin.

Selectors and formatting only, no state changes. Every export is one SQL query whatever its
size (the figures are annotations, see orders/querysets.py), read with `.iterator()` in
chunks and written a block at a time, so memory stays flat and a response can stream.

Columns follow orders.csv_format. Cells are text a spreadsheet will not run: a text cell that
starts like a formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading `'` (see `neutralise`).
Numbers and dates the tracker computes are written as they are, so a slip of -3 stays -3.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from typing import Any

from django.db import connection, transaction
from django.db.models import QuerySet

from orders.csv_format import ORDER_COLUMNS, QUOTE_COLUMNS
from orders.models import DeliveryQuote, OrderLine, PurchaseOrder

CHUNK_SIZE = 2000  # rows per database round trip
BLOCK_ROWS = 500  # rows per string handed to a file or an HTTP response
BOM = "\ufeff"

# Where each column comes from; keyed by the contract's names so the two cannot drift apart.
_ORDER_SOURCES: dict[str, str] = {
    "po_number": "order__po_number",
    "vendor": "order__vendor__name",
    "buyer_email": "order__buyer__email",
    "status": "order__status",
    "gpu_model": "gpu_model__name",
    "quantity": "quantity",
    "unit_price": "unit_price",
    "currency": "order__currency",
    "placed_on": "order__placed_on",
    "need_by": "order__need_by",
    "baseline_delivery_date": "baseline_delivery_date",
    "current_delivery_date": "current_delivery_date",
    "baseline_lead_days": "baseline_lead_days",
    "current_lead_days": "current_lead_days",
    "slip_days": "slip_days",
    "requote_count": "requote_count",
    "open_alerts": "open_alerts",
}
_QUOTE_SOURCES: dict[str, str] = {
    "po_number": "order__po_number",
    "quoted_on": "quoted_on",
    "delivery_date": "delivery_date",
    "note": "note",
    "gpu_model": "line__gpu_model__name",
}
# Free text people or vendors typed: the only cells that can smuggle in a formula. The other
# columns are numbers, dates and codes the tracker writes itself.
TEXT_COLUMNS = frozenset(
    {"po_number", "vendor", "buyer_email", "status", "gpu_model", "currency", "note"}
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise(text: str) -> str:
    """Prefix `'` to text a spreadsheet would read as a formula (OWASP "CSV injection").

    Text already starting with quotes before such a character gets one more, so a reader
    that strips exactly one leading `'` from these cells always gets the original back.
    """
    if text.lstrip("'").startswith(_FORMULA_STARTS):
        return "'" + text
    return text


def restore(text: str) -> str:
    """The inverse of neutralise(): what an import reads back from an exported cell."""
    if text.startswith("'") and text.lstrip("'").startswith(_FORMULA_STARTS):
        return text[1:]
    return text


def _cell(value: Any) -> str:
    """A value as the file shows it: '' for missing, ISO 8601 dates, plain decimals."""
    if value is None:
        return ""
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")  # never 1E+4
    return str(value)


def _text_cell(value: Any) -> str:
    return neutralise(_cell(value))


def _formatters(columns: Sequence[str]) -> list[Callable[[Any], str]]:
    return [_text_cell if column in TEXT_COLUMNS else _cell for column in columns]


@contextmanager
def _one_read() -> Iterator[None]:
    """Read a whole export in one transaction: every chunk sees the same data, and
    PostgreSQL streams the server-side cursor (outside a transaction Django declares it WITH
    HOLD, which computes the whole result before handing over the first row).

    On PostgreSQL also without JIT: the orders query's per-row subqueries put its cost
    estimate past `jit_above_cost`, and compiling it costs more than it saves (reading the
    100,000 rows of bench/export_orders.py: 9.3 s with JIT, 5.7 s without)."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL jit = off")
        yield


def order_lines(orders: QuerySet[PurchaseOrder]) -> QuerySet[OrderLine]:
    """The lines of `orders` with every figure of the orders file, in file order."""
    return (
        OrderLine.objects.filter(order__in=orders.order_by().values("pk"))
        .with_lead_times()
        .with_open_alerts()
        .order_by("order__po_number", "id")
    )


def order_rows(orders: QuerySet[PurchaseOrder]) -> Iterator[list[str]]:
    """One row per order line of `orders`, columns as ORDER_COLUMNS; one query in all."""
    fields = [_ORDER_SOURCES[column] for column in ORDER_COLUMNS]
    formatters = _formatters(ORDER_COLUMNS)
    lines = order_lines(orders).values_list(*fields)
    with _one_read():
        for values in lines.iterator(chunk_size=CHUNK_SIZE):
            yield [fmt(v) for fmt, v in zip(formatters, values, strict=True)]


def order_quotes(orders: QuerySet[PurchaseOrder]) -> QuerySet[DeliveryQuote]:
    """Every quote of `orders`, ordered (po_number, quoted_on, id) so files are byte-stable."""
    return DeliveryQuote.objects.filter(order__in=orders.order_by().values("pk")).order_by(
        "order__po_number", "quoted_on", "id"
    )


def quote_rows(orders: QuerySet[PurchaseOrder]) -> Iterator[list[str]]:
    """One row per quote of `orders`, columns as QUOTE_COLUMNS; one query in all."""
    fields = [_QUOTE_SOURCES[column] for column in QUOTE_COLUMNS]
    formatters = _formatters(QUOTE_COLUMNS)
    quotes = order_quotes(orders).values_list(*fields)
    with _one_read():
        for values in quotes.iterator(chunk_size=CHUNK_SIZE):
            yield [fmt(v) for fmt, v in zip(formatters, values, strict=True)]


class _Echo:
    """A file-like object whose write() hands the line back, so csv.writer can stream."""

    def write(self, value: str) -> str:
        return value


def csv_lines(
    rows: Iterable[Sequence[str]], *, header: Sequence[str], bom: bool = False
) -> Iterator[str]:
    """CSV text (RFC 4180: CRLF line ends, quotes where needed), a block of rows at a time;
    the first block starts with the header and, with bom=True, a UTF-8 byte order mark so
    Excel reads the file as UTF-8."""
    writer = csv.writer(_Echo())
    block = [BOM if bom else "", writer.writerow(header)]
    for row in rows:
        block.append(writer.writerow(row))
        if len(block) >= BLOCK_ROWS:
            yield "".join(block)
            block = []
    if block:
        yield "".join(block)


def orders_csv(orders: QuerySet[PurchaseOrder], *, bom: bool = False) -> Iterator[str]:
    """The orders file for `orders` (header included)."""
    return csv_lines(order_rows(orders), header=ORDER_COLUMNS, bom=bom)


def quotes_csv(orders: QuerySet[PurchaseOrder], *, bom: bool = False) -> Iterator[str]:
    """The quote history file for `orders` (header included)."""
    return csv_lines(quote_rows(orders), header=QUOTE_COLUMNS, bom=bom)
