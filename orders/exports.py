"""CSV exports: the one writer behind `manage.py export_orders/export_quotes` and the admin.

Selectors and formatting only, no state changes. Each export runs a fixed number of SQL
queries whatever its size (quotes: one; orders: three, walked side by side, with the figures
computed here by orders.slips.line_schedule), read with `.iterator()` in chunks, in one
transaction, and written a block at a time, so memory stays flat and a response can stream.

Columns follow orders.csv_format. Cells are text a spreadsheet will not run: a text cell that
starts like a formula (`=`, `+`, `-`, `@`, tab, CR) gets a leading `'` (see `neutralise`).
Numbers and dates the tracker computes are written as they are, so a slip of -3 stays -3.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date
from decimal import Decimal
from itertools import groupby, islice
from operator import itemgetter
from typing import Any

from django.db import connection, transaction
from django.db.models import FilteredRelation, Q, QuerySet

from orders.csv_format import ORDER_COLUMNS, ORDER_DERIVED, QUOTE_COLUMNS
from orders.models import DeliveryQuote, OrderLine, PurchaseOrder
from orders.slips import line_schedule

CHUNK_SIZE = 2000  # rows per database round trip
BLOCK_ROWS = 500  # rows per string handed to a file or an HTTP response
BOM = "\ufeff"
MEMO_SIZE = 10_000  # formatted values kept per column kind (see _Memo)

# Where each plain column of the orders file comes from, from an order (the rest,
# ORDER_DERIVED, are computed here); keyed by the contract's names so they cannot drift apart.
_ORDER_SOURCES: dict[str, str] = {
    "po_number": "po_number",
    "vendor": "vendor__name",
    "buyer_email": "buyer__email",
    "status": "status",
    "gpu_model": "lines__gpu_model__name",
    "quantity": "lines__quantity",
    "unit_price": "lines__unit_price",
    "currency": "currency",
    "placed_on": "placed_on",
    "need_by": "need_by",
}
if (*_ORDER_SOURCES, *ORDER_DERIVED) != ORDER_COLUMNS:  # order_rows() builds rows in this order
    raise ImportError("orders.exports: ORDER_COLUMNS is not the plain columns, then ORDER_DERIVED")
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
    """Read a whole export in one transaction, so it is one snapshot of the data.

    PostgreSQL streams a server-side cursor inside a transaction (outside one Django declares
    it WITH HOLD, which computes the whole result before handing over the first row). When
    the export opens the transaction it makes it REPEATABLE READ: the orders file reads three
    queries side by side, and under READ COMMITTED each would see the data as of its own
    start. Inside a caller's transaction its isolation applies (and order_rows() stops with
    an error if the streams disagree on which orders there are). SQLite transactions are
    serializable already."""
    fresh = connection.get_autocommit()  # no transaction yet: atomic() begins one
    with transaction.atomic():
        if fresh and connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        yield


def order_lines(orders: QuerySet[PurchaseOrder]) -> QuerySet[OrderLine]:
    """The lines of `orders` with every figure of the orders file, in file order."""
    return (
        OrderLine.objects.filter(order__in=orders.order_by().values("pk"))
        .with_lead_times()
        .with_open_alerts()
        .order_by("order__po_number", "id")
    )


class _Memo(dict[Any, str]):
    """A formatter memoised, for values that repeat (vendors, GPU models, dates, days): a
    dict lookup costs less than formatting. Keeps at most MEMO_SIZE values, so memory stays
    flat whatever the data."""

    def __init__(self, format_value: Callable[[Any], str]) -> None:
        super().__init__()
        self.format_value = format_value

    def __missing__(self, value: Any) -> str:
        text = self.format_value(value)
        if len(self) < MEMO_SIZE:
            self[value] = text
        return text


_NO_FIGURES = ("", "", "", "", "", "0")  # a line without quotes: no dates, no re-quotes
_LINE_OF_QUOTE = itemgetter(1)  # quote rows are (order id, line id, delivery date)
_ALERT_CODE = itemgetter(1)  # alert rows are (order id, code)
_ENDED: tuple[None, Iterator[Any]] = (None, iter(()))  # a stream that ran out


def _selected(orders: QuerySet[PurchaseOrder]) -> QuerySet[PurchaseOrder]:
    """The orders to read the three streams from.

    `orders` itself when it filters on the order's own columns only (`PurchaseOrder.objects
    .all()`, `.filter(status=...)`, `pk__in=[...]`): the database then reads just those
    orders. With joins (a multi-valued one would narrow or repeat the lines), annotations,
    DISTINCT or the like, its filters become `pk IN (...)` on a plain queryset instead.
    """
    query = orders.query
    plain = len(query.alias_map) <= 1 and not (
        query.annotations or query.distinct or query.combinator or query.is_sliced or query.extra
    )
    if plain:
        return orders.order_by().prefetch_related(None)  # values_list() drops select_related
    return PurchaseOrder.objects.filter(pk__in=orders.order_by().values("pk"))


def _open_alerts(codes: frozenset[str | None]) -> str:
    return ";".join(sorted(code for code in codes if code is not None))


def order_rows(orders: QuerySet[PurchaseOrder], *, csv_fields: bool = False) -> Iterator[list[str]]:
    """One row per order line of `orders`, columns as ORDER_COLUMNS; three queries in all.

    With csv_fields=True text cells come as csv.writer writes them (quoted if need be), so
    a row is written by joining it with commas: no other cell ever needs quotes.

    The figures follow OrderLine.objects.with_lead_times() (the rule is
    orders.slips.line_schedule) but are computed here, from three streams sorted alike by
    (po_number, order id): the orders with their lines, with their quotes by (quoted_on, id),
    and with their open alert codes. Each is an outer join, so every stream has every order
    (no lines, quotes or alerts read as one row of NULLs) and they are walked in step.
    Per-line correlated subqueries cost several times as much (bench/export_orders.py).
    """
    selected = _selected(orders)
    lines = selected.order_by("po_number", "pk", "lines__id").values_list(
        "pk", "lines__id", *_ORDER_SOURCES.values()
    )
    quotes = selected.order_by("po_number", "pk", "quotes__quoted_on", "quotes__id").values_list(
        "pk", "quotes__line_id", "quotes__delivery_date"
    )
    open_alert = FilteredRelation("alerts", condition=Q(alerts__acknowledged_at__isnull=True))
    alerts = (
        selected.annotate(open_alert=open_alert)
        .order_by("po_number", "pk")
        .values_list("pk", "open_alert__code")
    )
    with _one_read():
        yield from _order_rows(
            lines.iterator(chunk_size=CHUNK_SIZE),
            quotes.iterator(chunk_size=CHUNK_SIZE),
            alerts.iterator(chunk_size=CHUNK_SIZE),
            text_cell=_csv_text if csv_fields else neutralise,
        )


def _order_rows(
    lines: Iterable[tuple[Any, ...]],
    quotes: Iterable[tuple[Any, ...]],
    alerts: Iterable[tuple[Any, ...]],
    *,
    text_cell: Callable[[str], str],
) -> Iterator[list[str]]:
    """order_rows() from its three streams, walked in step (no database here)."""
    text, iso, number = _Memo(text_cell), _Memo(date.isoformat), _Memo(str)
    open_alerts = _Memo(_open_alerts)  # at most one entry per subset of the alert codes
    quote_groups = groupby(quotes, key=itemgetter(0))
    alert_groups = groupby(alerts, key=itemgetter(0))
    for order_id, order_lines in groupby(lines, key=itemgetter(0)):
        quotes_of, quote_group = next(quote_groups, _ENDED)
        alerts_of, alert_group = next(alert_groups, _ENDED)
        if not order_id == quotes_of == alerts_of:
            raise RuntimeError("orders export: lines, quotes and alerts out of step")
        order_quotes = list(quote_group)
        if order_quotes[0][2] is None:  # the NULL row of an order without quotes
            order_quotes = []
        alerts_cell = open_alerts[frozenset(map(_ALERT_CODE, alert_group))]
        order_cells: tuple[str, ...] = ()
        for (
            _,
            line_id,
            po_number,
            vendor,
            buyer_email,
            status,
            gpu_model,
            quantity,
            unit_price,
            currency,
            placed_on,
            need_by,
        ) in order_lines:
            if line_id is None:  # the NULL row of an order without lines: no row
                continue
            if not order_cells:
                order_cells = (
                    text_cell(po_number),  # unique: not worth keeping
                    text[vendor],
                    text[buyer_email],
                    text[status],
                    text[currency],
                    iso[placed_on],
                    "" if need_by is None else iso[need_by],
                )
            po, vendor_cell, buyer_cell, status_cell, currency_cell, placed, need = order_cells
            plan = line_schedule(order_quotes, line_id, _LINE_OF_QUOTE)
            if plan is None:
                figures: Sequence[str] = _NO_FIGURES
            else:
                (_, _, baseline), (_, _, current), applicable = plan
                figures = (
                    iso[baseline],
                    iso[current],
                    number[(baseline - placed_on).days],
                    number[(current - placed_on).days],
                    number[(current - baseline).days],
                    number[applicable - 1],
                )
            yield [
                po,
                vendor_cell,
                buyer_cell,
                status_cell,
                text[gpu_model],
                number[quantity],
                format(unit_price, "f"),
                currency_cell,
                placed,
                need,
                *figures,
                alerts_cell,
            ]
    if next(quote_groups, None) is not None or next(alert_groups, None) is not None:
        raise RuntimeError("orders export: lines, quotes and alerts out of step")


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


_field_writer = csv.writer(_Echo())
# Text that neither neutralise() nor csv.writer (excel dialect: it quotes a field holding a
# comma, a double quote, CR or LF) would change: the common case, checked in one call.
_PLAIN_TEXT = re.compile(r'(?![\'=+\-@\t\r])[^,"\r\n]*')


def _csv_text(text: str) -> str:
    """A text cell, neutralised, as csv.writer writes it within a row."""
    if _PLAIN_TEXT.fullmatch(text):
        return text
    text = neutralise(text)
    if not any(c in text for c in ',"\r\n'):
        return text
    return _field_writer.writerow((text,))[:-2]  # without its line end


def csv_lines(
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str],
    bom: bool = False,
    csv_fields: bool = False,
) -> Iterator[str]:
    """CSV text (RFC 4180: CRLF line ends, quotes where needed), a block of rows at a time;
    the first block starts with the header and, with bom=True, a UTF-8 byte order mark so
    Excel reads the file as UTF-8. csv_fields=True: every cell is already a CSV field (see
    order_rows), so rows are joined with commas rather than written by csv.writer."""
    writer = csv.writer(_Echo())
    first = (BOM if bom else "") + writer.writerow(header)
    rows = iter(rows)
    while block := list(islice(rows, BLOCK_ROWS)):
        if csv_fields:
            text = "\r\n".join(map(",".join, block)) + "\r\n"
        else:
            text = "".join(map(writer.writerow, block))
        yield first + text
        first = ""
    if first:
        yield first


def orders_csv(orders: QuerySet[PurchaseOrder], *, bom: bool = False) -> Iterator[str]:
    """The orders file for `orders` (header included)."""
    return csv_lines(
        order_rows(orders, csv_fields=True), header=ORDER_COLUMNS, bom=bom, csv_fields=True
    )


def quotes_csv(orders: QuerySet[PurchaseOrder], *, bom: bool = False) -> Iterator[str]:
    """The quote history file for `orders` (header included)."""
    return csv_lines(quote_rows(orders), header=QUOTE_COLUMNS, bom=bom)
