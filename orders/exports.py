"""CSV exports: the one writer behind `manage.py export_orders/export_quotes` and the admin.

Selectors and formatting only, no state changes. Each export runs a fixed number of SQL
queries whatever its size, in one transaction, and is written a block at a time, so memory
stays flat and a response can stream. The quote history is one query read in chunks. The
orders file is, on PostgreSQL, one `COPY` whose query writes each line of the file (see
`_orders_file_sql`); elsewhere (SQLite) two queries walked side by side (`order_rows`). The
second is the reference the first is tested against (tests/unit/test_exports.py). Both read
the schedule figures stored on each line (orders.schedules), never the quote history.

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
from typing import Any, NamedTuple

from django.contrib.auth import get_user_model
from django.core.exceptions import EmptyResultSet, FullResultSet
from django.db import connection, transaction
from django.db.models import FilteredRelation, QuerySet

from orders.csv_format import ORDER_COLUMNS, ORDER_DERIVED, QUOTE_COLUMNS
from orders.models import (
    DeliveryQuote,
    GpuModel,
    OrderLine,
    PurchaseOrder,
    SlipAlert,
    Vendor,
    open_alert_q,
)
from orders.slips import FIGURES, Code

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
    the export opens the transaction it makes it REPEATABLE READ: the Python walk of the
    orders file reads three queries side by side, and under READ COMMITTED each would see the
    data as of its own start (the COPY is one statement, one snapshot either way). Inside a
    caller's transaction its isolation applies (and order_rows() stops with an error if the
    streams disagree on which orders there are). SQLite transactions are
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


_ALERT_CODE = itemgetter(1)  # alert rows are (order id, code)
_ENDED: tuple[None, Iterator[Any]] = (None, iter(()))  # a stream that ran out


def _selected(orders: QuerySet[PurchaseOrder]) -> QuerySet[PurchaseOrder]:
    """The orders to read the three streams from.

    `orders` itself when it filters on the order's own columns only (`PurchaseOrder.objects
    .all()`, `.filter(status=...)`, `pk__in=[...]`): the database then reads just those
    orders. With joins (a multi-valued one would narrow or repeat the lines), annotations,
    DISTINCT or the like, its filters become `pk IN (...)` on a plain queryset instead.
    """
    if _plain(orders):
        return orders.order_by().prefetch_related(None)  # values_list() drops select_related
    return PurchaseOrder.objects.filter(pk__in=orders.order_by().values("pk"))


def _plain(orders: QuerySet[PurchaseOrder]) -> bool:
    """Whether `orders` filters on the order's own columns only (see _selected)."""
    query = orders.query
    return len(query.alias_map) <= 1 and not (
        query.annotations or query.distinct or query.combinator or query.is_sliced or query.extra
    )


def _open_alerts(codes: frozenset[str | None]) -> str:
    return ";".join(sorted(code for code in codes if code is not None))


def order_rows(orders: QuerySet[PurchaseOrder], *, csv_fields: bool = False) -> Iterator[list[str]]:
    """One row per order line of `orders`, columns as ORDER_COLUMNS; two queries in all.

    With csv_fields=True text cells come as csv.writer writes them (quoted if need be), so
    a row is written by joining it with commas: no other cell ever needs quotes.

    Two streams sorted alike by (po_number, order id): the orders with their lines and the
    lines' stored figures, and the orders with their open alert codes. Each is an outer join,
    so both have every order (no lines or alerts read as one row of NULLs) and they are
    walked in step.
    """
    selected = _selected(orders)
    lines = selected.order_by("po_number", "pk", "lines__id").values_list(
        "pk", "lines__id", *_ORDER_SOURCES.values(), *(f"lines__{name}" for name in FIGURES)
    )
    open_alert = FilteredRelation("alerts", condition=open_alert_q("alerts__"))
    alerts = (
        selected.annotate(open_alert=open_alert)
        .order_by("po_number", "pk")
        .values_list("pk", "open_alert__code")
    )
    with _one_read():
        yield from _order_rows(
            lines.iterator(chunk_size=CHUNK_SIZE),
            alerts.iterator(chunk_size=CHUNK_SIZE),
            text_cell=_csv_text if csv_fields else neutralise,
        )


def _order_rows(
    lines: Iterable[tuple[Any, ...]],
    alerts: Iterable[tuple[Any, ...]],
    *,
    text_cell: Callable[[str], str],
) -> Iterator[list[str]]:
    """order_rows() from its two streams, walked in step (no database here)."""
    text, iso, number = _Memo(text_cell), _Memo(_cell), _Memo(_cell)
    open_alerts = _Memo(_open_alerts)  # at most one entry per subset of the alert codes
    alert_groups = groupby(alerts, key=itemgetter(0))
    for order_id, order_lines in groupby(lines, key=itemgetter(0)):
        alerts_of, alert_group = next(alert_groups, _ENDED)
        if order_id != alerts_of:
            raise RuntimeError("orders export: lines and alerts out of step")
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
            baseline,
            current,
            baseline_lead,
            current_lead,
            slip,
            requotes,
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
                    iso[need_by],
                )
            po, vendor_cell, buyer_cell, status_cell, currency_cell, placed, need = order_cells
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
                iso[baseline],
                iso[current],
                number[baseline_lead],
                number[current_lead],
                number[slip],
                number[requotes],
                alerts_cell,
            ]
    if next(alert_groups, None) is not None:
        raise RuntimeError("orders export: lines and alerts out of step")


# --- The orders file on PostgreSQL: one COPY ------------------------------------------------

# Text that needs neither neutralise() nor CSV quotes, as _PLAIN_TEXT says, and the two
# tests behind it, as PostgreSQL regular expressions (ARE: \t and \r are escapes in brackets).
_SQL_NEEDS_WORK = r"""'^''*[=+@\t\r-]|[,"\r\n]'"""
_SQL_FORMULA = r"""'^''*[=+@\t\r-]'"""
_SQL_NEEDS_QUOTES = r"""'[,"\r\n]'"""


def _sql_text_cell(column: str) -> str:
    """SQL writing a text column as _csv_text() does: neutralised, then quoted if need be."""
    neutral = f"(CASE WHEN {column} ~ {_SQL_FORMULA} THEN '''' || {column} ELSE {column} END)"
    return (
        f"CASE WHEN {column} !~ {_SQL_NEEDS_WORK} THEN {column} "
        f"WHEN {neutral} ~ {_SQL_NEEDS_QUOTES} "
        f"""THEN '"' || replace({neutral}, '"', '""') || '"' ELSE {neutral} END"""
    )


class _Selection(NamedTuple):
    """The selected orders as SQL: the WHERE clause of `orders` on the orders table (see
    _selected; "TRUE" for every order) and whether it is simple: on the order's own columns,
    without a subquery (an Exists() filter, say)."""

    where: str
    params: list[Any]
    simple: bool


def _selection_sql(orders: QuerySet[PurchaseOrder]) -> _Selection | None:
    """`orders` as a _Selection; None for none (.none(), pk__in=[]: Django knows)."""
    query = _selected(orders).query
    try:
        sql, params = query.get_compiler(connection=connection).compile(query.where)
    except EmptyResultSet:
        return None
    except FullResultSet:
        sql, params = "", []
    # Values are parameters, so SELECT in the SQL text is a subquery of Django's.
    return _Selection(sql or "TRUE", list(params), _plain(orders) and "SELECT" not in sql)


def _orders_file_sql(selection: _Selection) -> tuple[str, list[Any]]:
    """One row per line of the orders file, in file order: its text, CSV-encoded, without
    the line end. The SQL spelling of order_rows() (tests hold the two together).

    The figures are the line's stored columns (orders.schedules). The open alert codes are
    a bit mask per order, one bit per code, looked up in the list of every code combination
    written in sorted order. Vendors, buyers and GPU models are written once each, in their
    own tables' scans; status and currency as they are (CHECK constraints keep them to codes
    that need no neutralising or quoting). No part of a line is NULL, so COPY never writes
    its NULL marker.

    Every order: whole tables, hash-joined; PostgreSQL writes 100,000 lines in about 1 s
    here (bench/export_orders.py). A simple selection (see _Selection) is applied to the
    orders and, as `order_id IN (...)`, to the quotes and alerts read, so few orders are
    read by their indexes. Any other (joins, subqueries, annotations) is
    computed once, as a MATERIALIZED CTE: repeated as a subquery, PostgreSQL could run it
    again for every row of a nested loop (with stale statistics a test took minutes).
    """
    where, where_params, simple = selection
    quote = connection.ops.quote_name
    table = {
        model: quote(model._meta.db_table)
        for model in (PurchaseOrder, OrderLine, SlipAlert, Vendor, GpuModel)
    }
    users = quote(get_user_model()._meta.db_table)
    codes = sorted(Code)
    code_bits = " ".join(f"WHEN %s THEN {1 << i}" for i in range(len(codes)))
    # The cell for each set of codes, as the Python walk writes it.
    combinations = [
        _open_alerts(frozenset(code for i, code in enumerate(codes) if mask >> i & 1))
        for mask in range(1 << len(codes))
    ]

    cte, cte_params = "", []
    if where == "TRUE":
        orders, orders_params, of_orders, of_orders_params = table[PurchaseOrder], [], "", []
    elif simple:
        orders = f"(SELECT * FROM {table[PurchaseOrder]} WHERE {where})"
        orders_params = where_params
        of_orders = f" AND order_id IN (SELECT id FROM {orders} selected)"
        of_orders_params = where_params
    else:
        cte = f"WITH selected AS MATERIALIZED (SELECT id FROM {table[PurchaseOrder]} WHERE {where})"
        cte_params = where_params
        orders = f"(SELECT * FROM {table[PurchaseOrder]} WHERE id IN (SELECT id FROM selected))"
        orders_params = []
        of_orders, of_orders_params = " AND order_id IN (SELECT id FROM selected)", []

    sql = f"""{cte}
SELECT {_sql_text_cell("o.po_number")} || ',' || v.cell || ',' || u.cell || ',' || o.status
    || ',' || g.cell || ',' || l.quantity::text || ',' || l.unit_price::text
    || ',' || o.currency || ',' || o.placed_on::text || ',' || COALESCE(o.need_by::text, '')
    || ',' || COALESCE(l.baseline_delivery_date::text, '')
    || ',' || COALESCE(l.current_delivery_date::text, '')
    || ',' || COALESCE(l.baseline_lead_days::text, '')
    || ',' || COALESCE(l.current_lead_days::text, '')
    || ',' || COALESCE(l.slip_days::text, '') || ',' || l.requote_count::text
    || ',' || COALESCE((%s::text[])[a.codes + 1], '')
FROM {orders} o
JOIN (SELECT id, {_sql_text_cell("name")} AS cell FROM {table[Vendor]}) v ON v.id = o.vendor_id
JOIN (SELECT id, {_sql_text_cell("COALESCE(email, '')")} AS cell FROM {users}) u
    ON u.id = o.buyer_id
JOIN {table[OrderLine]} l ON l.order_id = o.id
JOIN (SELECT id, {_sql_text_cell("name")} AS cell FROM {table[GpuModel]}) g
    ON g.id = l.gpu_model_id
LEFT JOIN (
    SELECT order_id, bit_or(CASE code {code_bits} END) AS codes
    FROM {table[SlipAlert]}
    WHERE status = %s AND acknowledged_at IS NULL{of_orders}
    GROUP BY order_id
) a ON a.order_id = o.id
ORDER BY o.po_number, l.id"""
    params = [
        *cte_params,
        combinations,
        *orders_params,
        *codes,
        SlipAlert.Status.OPEN,  # open_alert_q, as the Python walk reads it
        *of_orders_params,  # alerts
    ]
    return sql, params


def _copy_lines(selection: _Selection) -> Iterator[tuple[str, int]]:
    """The orders file's lines from PostgreSQL, as (text, rows) a block at a time."""
    sql, params = _orders_file_sql(selection)
    with _one_read(), connection.cursor() as cursor:
        # The file's dates are ISO 8601 whatever the server's DateStyle ("SQL, DMY" would
        # write 04/03/2023); LOCAL: until the end of this transaction (or the caller's).
        cursor.execute("SET LOCAL DateStyle = 'ISO'")
        # The lines are sorted by PO number: in memory rather than spilled to disk (the
        # default 4 MB holds about 20,000 lines). LOCAL: this export's transaction only.
        cursor.execute("SET LOCAL work_mem = '64MB'")
        statement = connection.ops.compose_sql(f"COPY ({sql}) TO STDOUT", params)
        with cursor.copy(statement) as copy:
            rows = (row[:-1] for row in copy)  # one CopyData message a row, "\n" at its end
            while block := list(islice(rows, BLOCK_ROWS)):
                yield _copy_block(block), len(block)


# COPY's text format escapes a backslash and the control characters it names in a value;
# it never writes a raw line end inside one.
_COPY_ESCAPE = re.compile(rb"\\(.)", re.DOTALL)
_COPY_UNESCAPED = {
    b"\\": b"\\",
    b"b": b"\b",
    b"f": b"\f",
    b"n": b"\n",
    b"r": b"\r",
    b"t": b"\t",
    b"v": b"\v",
}


def _copy_block(rows: list[Any]) -> str:
    """COPY text-format rows (line ends dropped) as CSV lines, CRLF-ended."""
    data = b"\r\n".join(rows) + b"\r\n"
    if b"\\" in data:  # rare: only text with a backslash, tab or line end in it
        data = _COPY_ESCAPE.sub(lambda m: _COPY_UNESCAPED[m.group(1)], data)
    return data.decode()


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


def _row_blocks(rows: Iterable[Sequence[str]], *, csv_fields: bool) -> Iterator[tuple[str, int]]:
    """Rows as CSV text (RFC 4180: CRLF line ends, quotes where needed), (text, rows) a
    block at a time. csv_fields=True: every cell is already a CSV field (see order_rows), so
    rows are joined with commas rather than written by csv.writer."""
    writer = csv.writer(_Echo())
    rows = iter(rows)
    while block := list(islice(rows, BLOCK_ROWS)):
        if csv_fields:
            yield "\r\n".join(map(",".join, block)) + "\r\n", len(block)
        else:
            yield "".join(map(writer.writerow, block)), len(block)


def _headed(
    blocks: Iterable[tuple[str, int]], *, header: Sequence[str], bom: bool
) -> Iterator[tuple[str, int]]:
    """The blocks with the header (and, with bom=True, a UTF-8 byte order mark, so Excel
    reads the file as UTF-8) before the first; just those when there is no block."""
    first = (BOM if bom else "") + csv.writer(_Echo()).writerow(header)
    for text, rows in blocks:
        yield first + text, rows
        first = ""
    if first:
        yield first, 0


class CsvText(Iterator[str]):
    """CSV text a block at a time, as csv_lines() yields it; `rows` counts the data rows in
    the blocks handed out so far. close() ends the read early (an HTTP client gone)."""

    def __init__(self, blocks: Iterator[tuple[str, int]]) -> None:
        self._blocks = blocks
        self.rows = 0

    def __next__(self) -> str:
        text, rows = next(self._blocks)
        self.rows += rows
        return text

    def close(self) -> None:
        close = getattr(self._blocks, "close", None)
        if close is not None:
            close()


def csv_lines(
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str],
    bom: bool = False,
    csv_fields: bool = False,
) -> CsvText:
    """CSV text for `rows` under `header`, a block of rows at a time (see _row_blocks and
    _headed)."""
    return CsvText(_headed(_row_blocks(rows, csv_fields=csv_fields), header=header, bom=bom))


def _orders_blocks(orders: QuerySet[PurchaseOrder]) -> Iterator[tuple[str, int]]:
    if connection.vendor == "postgresql":
        selection = _selection_sql(orders)
        return iter(()) if selection is None else _copy_lines(selection)
    return _row_blocks(order_rows(orders, csv_fields=True), csv_fields=True)


def orders_csv(orders: QuerySet[PurchaseOrder], *, bom: bool = False) -> CsvText:
    """The orders file for `orders` (header included)."""
    return CsvText(_headed(_orders_blocks(orders), header=ORDER_COLUMNS, bom=bom))


def quotes_csv(orders: QuerySet[PurchaseOrder], *, bom: bool = False) -> CsvText:
    """The quote history file for `orders` (header included)."""
    return csv_lines(quote_rows(orders), header=QUOTE_COLUMNS, bom=bom)
