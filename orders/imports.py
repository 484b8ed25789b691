"""CSV imports: a buyer's orders sheet and a vendor's re-quote sheet (columns: orders.csv_format).

All or nothing: every row is read and validated first, by the models' own rules and without a
query per row, every error is collected with its row and column, and only a file without errors
is written, in one transaction. Idempotent: what the database already holds identically is left
alone and counted as unchanged; what it holds differently is an error, never a silent update.
New quotes go through `services.quotes_add_bulk`, so each order is re-judged for slips after
the commit, as after any quote.

Bounded: the file (bytes, a binary file object or an iterable of byte pieces) is read as a
stream, a piece at a time; past settings.IMPORT_MAX_BYTES or IMPORT_MAX_ROWS the import stops
with an error saying to split the file, and reads no further. The rows read are held, compactly,
until every one is checked: the row limit is what bounds an import's memory.
"""

from __future__ import annotations

import codecs
import csv
import itertools
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence, Set
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any, BinaryIO

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import validate_email
from django.db import IntegrityError, InterfaceError, OperationalError, connection, transaction
from django.db.models import Model, QuerySet
from django.db.models.functions import Lower
from django.template.defaultfilters import filesizeformat

from orders import bulk, csv_format, history, roles, schedules, services
from orders.dates import today
from orders.exports import restore
from orders.models import (
    DeliveryQuote,
    GpuModel,
    OrderLine,
    OrderStatus,
    PriceQuote,
    PurchaseOrder,
    Vendor,
)
from orders.roles import Role
from orders.text import header_text

PREVIEW_ROWS = 10
# Bytes read from a file at a time: reading holds one such piece (and one line), not the file.
READ_SIZE = 64 * 1024
# The start of a file that is checked as one, before it is decoded.
_HEAD_SIZE = 4096
_BOM_AND_SPACE = codecs.BOM_UTF8 + b" \t\n\r\x0b\x0c"
# Rows per INSERT and names per IN (...) lookup: PostgreSQL and SQLite cap the parameters of
# one statement, and a bounded size keeps the query count proportional to chunks, not rows.
CHUNK = 2000
ORDER_COUNTS = ("vendors", "GPU models", "buyers", "orders", "order lines", "quotes")
QUOTE_COUNTS = ("quotes",)
PRICE_COUNTS = ("price quotes",)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_WHOLE_NUMBER = re.compile(r"[+-]?\d+")
_MEMORY_IN_NAME = re.compile(r"(\d+)\s*GB\b", re.IGNORECASE)
# A new GPU model needs its memory. Names usually say it ("A100 80GB SXM"); these common ones
# do not, and have a single memory size. Any other model must exist already or say it.
_KNOWN_MEMORY_GB = {
    "a10": 24,
    "a30": 24,
    "a40": 48,
    # The export-market A100 of the shortage; the rarer 40 GB card says so ("A800 40GB").
    "a800": 80,
    "h100 sxm": 80,
    "h100 pcie": 80,
    "h100 nvl": 94,
    "h200": 141,
    "h800": 80,
    "l4": 24,
    "l40": 48,
    "l40s": 48,
    "t4": 16,
}
_STATUSES = frozenset(OrderStatus.values)
_NEW_VENDOR_KIND = Vendor.Kind.DISTRIBUTOR
_NEW_VENDOR_NOTE = "Created by a CSV import, which does not say the kind: check it."


@dataclass(frozen=True)
class RowError:
    """One thing wrong with a file. `row` is the row a spreadsheet shows (the header is row 1);
    None means the whole file."""

    row: int | None
    column: str
    value: str
    message: str

    def __str__(self) -> str:
        where = "file" if self.row is None else f"row {self.row}"
        if self.column:
            where += f", column {self.column}"
        if self.value:
            shown = self.value if len(self.value) <= 60 else self.value[:57] + "..."
            where += f", value {shown!r}"
        return f"{where}: {self.message}"


@dataclass
class ImportReport:
    """What an import did (or, for a dry run or a file with errors, would have done)."""

    kind: str
    dry_run: bool
    rows: int = 0
    created: dict[str, int] = field(default_factory=dict)
    unchanged: dict[str, int] = field(default_factory=dict)
    errors: list[RowError] = field(default_factory=list)
    header: list[str] = field(default_factory=list)
    preview: list[list[str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors

    @property
    def written(self) -> bool:
        return self.ok and not self.dry_run

    def summary(self) -> list[str]:
        """Human lines: rows read, what was (or would be) created and what was already there."""
        if not self.ok:
            return [
                f"{len(self.errors)} error(s) in {self.rows} row(s): nothing was imported.",
            ]
        created = ", ".join(f"{n} {what}" for what, n in self.created.items())
        unchanged = ", ".join(f"{n} {what}" for what, n in self.unchanged.items())
        lines = [
            f"{self.rows} row(s) read.",
            f"{'Would create' if self.dry_run else 'Created'}: {created}.",
            f"Unchanged (already recorded): {unchanged}.",
        ]
        buyers = self.created.get("buyers", 0)
        if buyers:
            lines.append(
                f"{buyers} buyer account(s) {'would be ' if self.dry_run else ''}created: "
                "active, with the Buyer role and no password; they are emailed about their "
                'orders\' slips and can set a password with "Forgot password?" on the login '
                "page."
            )
        if self.dry_run:
            lines.append("Dry run: nothing was written.")
        return lines


class _FileError(Exception):
    """The file as a whole cannot be read; the message says why (and where, if it can)."""

    def __init__(self, message: str, row: int | None = None) -> None:
        super().__init__(message)
        self.row = row


# What an import reads: the file's bytes, a binary file object (read in pieces), or its pieces.
ImportSource = bytes | BinaryIO | Iterable[bytes]
_NONE_BAD: frozenset[str] = frozenset()


class _RowCells(Mapping[str, str]):
    """One row's cells by column name: the row's values and the file's shared name -> position
    map, so that a row costs a tuple of its cells and not a dict of its own."""

    __slots__ = ("_positions", "_values")

    def __init__(self, positions: dict[str, int], values: tuple[str, ...]) -> None:
        self._positions, self._values = positions, values

    def __getitem__(self, column: str) -> str:
        return self._values[self._positions[column]]

    def __iter__(self) -> Iterator[str]:
        return iter(self._positions)

    def __len__(self) -> int:
        return len(self._positions)


class _Row:
    """One data row of a file: its number (the row a spreadsheet shows) and its cells."""

    __slots__ = ("_bad", "cells", "number")

    def __init__(self, number: int, cells: Mapping[str, str]) -> None:
        self.number, self.cells = number, cells
        self._bad: set[str] | None = None  # most rows have no bad column: no set for them

    @property
    def bad(self) -> Set[str]:
        """The columns already reported as wrong."""
        return self._bad if self._bad is not None else _NONE_BAD

    def mark_bad(self, column: str) -> None:
        if self._bad is None:
            self._bad = set()
        self._bad.add(column)


def orders_import(
    *,
    content: ImportSource,
    dry_run: bool = False,
    user: AbstractBaseUser | AnonymousUser | None = None,
    filename: str = "",
) -> ImportReport:
    """Import an orders sheet: one row per order line, plus an optional whole-order quote.

    Creates the vendors, GPU models, buyers (active, with the Buyer role, no usable password),
    orders, lines and quotes that are missing; leaves identical ones alone; reports every
    difference from what is recorded, and every bad value, as an error and then writes
    nothing."""
    return _import(
        _report("orders", dry_run, ORDER_COUNTS, counted_unchanged=ORDER_COUNTS[3:]),
        content,
        file_format=csv_format.ORDERS_IMPORT,
        reason=f"import_orders {filename}".strip(),
        plan=lambda rows, report: _OrdersPlan(rows, report, _recorded_by(user), _source(filename)),
    )


def quotes_import(
    *,
    content: ImportSource,
    dry_run: bool = False,
    user: AbstractBaseUser | AnonymousUser | None = None,
    filename: str = "",
) -> ImportReport:
    """Import a vendor's re-quote sheet: each row a delivery date quoted for an existing PO,
    for the whole order or, with gpu_model, for that line. A quote already recorded (same
    order, line, quoted_on and delivery_date) is not added again."""
    return _import(
        _report("quotes", dry_run, QUOTE_COUNTS, counted_unchanged=QUOTE_COUNTS),
        content,
        file_format=csv_format.QUOTES_IMPORT,
        reason=f"import_quotes {filename}".strip(),
        plan=lambda rows, report: _QuotesPlan(rows, report, _recorded_by(user), _source(filename)),
    )


def prices_import(
    *,
    content: ImportSource,
    dry_run: bool = False,
    user: AbstractBaseUser | AnonymousUser | None = None,
    filename: str = "",
) -> ImportReport:
    """Import a price sheet: each row a unit price a known vendor quoted for a known GPU model
    on a day. A price already recorded (same vendor, model, currency, day and price) is not
    added again; new prices are judged by the price_rise rule once committed."""
    return _import(
        _report("prices", dry_run, PRICE_COUNTS, counted_unchanged=PRICE_COUNTS),
        content,
        file_format=csv_format.PRICES_IMPORT,
        reason=f"import_prices {filename}".strip(),
        plan=lambda rows, report: _PricesPlan(rows, report, _source(filename)),
    )


def _import(
    report: ImportReport,
    content: ImportSource,
    *,
    file_format: csv_format.ImportFormat,
    plan: Callable[[list[_Row], ImportReport], Any],
    reason: str = "",
) -> ImportReport:
    """Read, check every row, then write all of it in one transaction or nothing. The audit
    trail records the writes with `reason` and the plan's user (else the request's)."""
    try:
        rows = _read(content, file_format=file_format, report=report)
    except _FileError as exc:
        report.errors.append(RowError(exc.row, "", "", str(exc)))
        return report
    try:
        checked = plan(rows, report)
        checked.check()
    except DB_FAILURES as exc:  # reading what is recorded: nothing written yet
        report.errors.append(RowError(None, "", "", _database_failure(exc)))
        return report
    report.errors.sort(key=lambda error: error.row or 0)  # stable: a row's errors keep order
    if report.ok and not report.dry_run:
        with history.acting(user=getattr(checked, "user", None), reason=reason):
            _write(report, checked.write)
    return report


def _report(
    kind: str, dry_run: bool, counts: Sequence[str], counted_unchanged: Sequence[str]
) -> ImportReport:
    return ImportReport(
        kind=kind,
        dry_run=dry_run,
        created=dict.fromkeys(counts, 0),
        unchanged=dict.fromkeys(counted_unchanged, 0),
    )


def _recorded_by(user: AbstractBaseUser | AnonymousUser | None) -> AbstractBaseUser | None:
    return user if user is not None and user.is_authenticated else None


def _source(filename: str) -> str:
    source = header_text(f"CSV import {filename}")
    return source if len(source) <= 100 else source[:97] + "..."


# The connection lost (server restarted, backend terminated, network gone) or the transaction
# ended by the server (deadlock, serialization failure, lock or statement timeout).
DB_FAILURES = (OperationalError, InterfaceError)


def _database_failure(exc: Exception) -> str:
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    # PostgreSQL: SQLSTATE class 08 is a connection failure, 57P an administrator's or a
    # crash's shutdown (pg_terminate_backend, a restart); no SQLSTATE, a dropped socket.
    sqlstate = getattr(exc.__cause__, "sqlstate", None) or ""
    lost = isinstance(exc, InterfaceError) or (
        connection.vendor == "postgresql" and (not sqlstate or sqlstate.startswith(("08", "57P")))
    )
    what = "The database connection was lost" if lost else "The database stopped the import"
    return (
        f"{what} ({reason}). Nothing was imported: the file is written in one transaction, "
        "and it was not committed. Import the file again."
    )


def _write(report: ImportReport, write: Any) -> None:
    """Run the writes in one transaction. Validation ran on what the database held a moment
    ago; if another import or an edit got in between, the database refuses and nothing stays.
    If the connection is lost (or the server ends the transaction) before the commit, nothing
    stays either, and the report says so instead of raising."""
    committed: list[bool] = []
    try:
        with transaction.atomic():
            # First of the commit hooks (the slip checks come after): a failure once this ran
            # is not the import's, which went through.
            transaction.on_commit(lambda: committed.append(True))
            write()
    except DB_FAILURES as exc:
        if committed:
            raise
        report.errors.append(RowError(None, "", "", _database_failure(exc)))
    except (IntegrityError, ValidationError) as exc:
        reason = "; ".join(exc.messages) if isinstance(exc, ValidationError) else str(exc)
        reason = " ".join(reason.split())  # PostgreSQL's DETAIL and CONTEXT lines
        report.errors.append(
            RowError(
                None,
                "",
                "",
                f"The database refused the import, so nothing was written ({reason}). The data "
                "may have changed since it was checked: import the file again.",
            )
        )


# --- Reading the file ---------------------------------------------------------------------------


def _chunks_of(content: ImportSource) -> Iterator[bytes]:
    """The file in pieces of at most READ_SIZE bytes (an iterable's pieces as they come)."""
    if isinstance(content, bytes | bytearray | memoryview):
        view = memoryview(content)
        for start in range(0, len(view), READ_SIZE):
            yield bytes(view[start : start + READ_SIZE])
    elif hasattr(content, "read"):
        while piece := content.read(READ_SIZE):
            yield piece
    else:
        yield from content


def _bounded(pieces: Iterable[bytes], limit: int) -> Iterator[bytes]:
    """The pieces, until they pass `limit` bytes: then _FileError, and nothing more is read."""
    read = 0
    for piece in pieces:
        read += len(piece)
        if read > limit:
            shown = filesizeformat(limit).replace("\xa0", " ")
            raise _FileError(
                f"The file is larger than {shown} ({limit} bytes, IMPORT_MAX_BYTES): split it "
                "into smaller files and import each one."
            )
        yield piece


def _decode(pieces: Iterable[bytes]) -> Iterator[str]:
    """The file's text, piece by piece, as it is read; raises _FileError as soon as what was
    read shows the file is not UTF-8 CSV text (empty, a workbook, UTF-16, NUL bytes)."""
    pieces = iter(pieces)
    # The start, judged as a whole whatever the pieces: not empty, not a workbook, not UTF-16,
    # no NUL byte (a binary file shows one early, before a byte that is not UTF-8).
    buffer = bytearray()
    for piece in pieces:
        buffer += piece
        if len(buffer) >= _HEAD_SIZE and piece.strip() and bytes(buffer).strip(_BOM_AND_SPACE):
            break
    head = bytes(buffer)
    del buffer
    if not head.removeprefix(codecs.BOM_UTF8).strip():
        raise _FileError("The file is empty.")
    if head.startswith(b"PK\x03\x04"):
        raise _FileError(
            "This is a spreadsheet workbook (.xlsx or .ods), not CSV: save it as "
            "'CSV UTF-8 (comma delimited)' and import that."
        )
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        raise _FileError(
            "This file is UTF-16 text (what Excel saves as 'Unicode Text'), not UTF-8: save "
            "it as 'CSV UTF-8 (comma delimited)' and import that."
        )
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines_before = 0  # line breaks in the pieces already decoded
    for piece in itertools.chain([head.removeprefix(codecs.BOM_UTF8)], pieces):
        if b"\x00" in piece:
            raise _FileError(
                "This is not a text file (it contains NUL bytes; UTF-16 text has them too): "
                "save it as 'CSV UTF-8 (comma delimited)'."
            )
        yield _decoded(decoder, piece, lines_before)
        lines_before += piece.count(b"\n")
    yield _decoded(decoder, b"", lines_before, final=True)


def _decoded(
    decoder: codecs.IncrementalDecoder, piece: bytes, lines_before: int, final: bool = False
) -> str:
    try:
        return decoder.decode(piece, final)
    except UnicodeDecodeError as exc:
        # exc.object is the decoder's held bytes (part of one character, never a line break)
        # followed by this piece.
        line = lines_before + exc.object[: exc.start].count(b"\n") + 1
        raise _FileError(
            f"The file is not UTF-8 text: byte 0x{exc.object[exc.start]:02X} on line {line} "
            "cannot be read. Save it as 'CSV UTF-8 (comma delimited)' and import that."
        ) from None


_LINE_END = re.compile(r"\r\n?|\n")


def _lines(texts: Iterable[str]) -> Iterator[str]:
    """The text's lines with their line ends, split where io.StringIO(newline="") splits
    them (as csv.reader wants), whatever the pieces' boundaries."""
    rest = ""
    for text in texts:
        text = rest + text
        start = 0
        for end in _LINE_END.finditer(text):
            if end.end() == len(text) and text.endswith("\r"):
                break  # the next piece may start with its "\n"
            yield text[start : end.end()]
            start = end.end()
        rest = text[start:]
    if rest:
        yield rest


def _read(
    content: ImportSource, *, file_format: csv_format.ImportFormat, report: ImportReport
) -> list[_Row]:
    """The data rows of a CSV file as stripped cells by column name; blank rows skipped.

    Reads the file as a stream: raises _FileError when it cannot be read, its header is wrong,
    or it is past settings.IMPORT_MAX_BYTES or IMPORT_MAX_ROWS (then the rest is not read). A
    row with more cells than the header is reported and skipped."""
    max_rows = settings.IMPORT_MAX_ROWS
    text = _lines(_decode(_bounded(_chunks_of(content), settings.IMPORT_MAX_BYTES)))
    # skipinitialspace: `a, "b"` is the cell b, as spreadsheets mean it.
    reader = csv.reader(text, strict=True, skipinitialspace=True)
    header: list[str] = []
    rows: list[_Row] = []
    data_rows = 0  # rows that are not blank, kept or reported
    distinct = dict[str, str]().setdefault
    number = 0  # the record last read: the row a spreadsheet shows
    try:
        for number, record in enumerate(reader, start=1):
            if number == 1:
                header = [name.strip() for name in record]
                _check_header(header, file_format.columns, file_format.required)
                report.header = [name for name in header if name not in file_format.ignored]
                # Each row keeps only its imported cells, in a tuple; names map to positions.
                kept = [i for i, name in enumerate(header) if name not in file_format.ignored]
                positions = {name: at for at, name in enumerate(report.header)}
                continue
            # Cells an export neutralised against spreadsheet formulas read back as they were.
            cells = [restore(cell.strip()) for cell in record]
            if not any(cells):
                continue  # blank rows, e.g. the trailing ones spreadsheets leave
            data_rows += 1
            if data_rows > max_rows:
                raise _FileError(
                    f"The file has more than {max_rows:,} rows (IMPORT_MAX_ROWS): split it into "
                    f"files of at most {max_rows:,} rows and import each one."
                )
            if len(cells) > len(header):
                report.errors.append(
                    RowError(
                        number,
                        "",
                        "",
                        f"This row has {len(cells)} cells but the header has {len(header)} "
                        "columns (a comma in a cell must be inside quotes).",
                    )
                )
                continue
            cells += [""] * (len(header) - len(cells))
            # Rows repeat most of their cells (vendor, buyer, model, currency, dates): one
            # string for each distinct value is held, not one per row.
            values = tuple([distinct(cells[i], cells[i]) for i in kept])
            row = _Row(number, _RowCells(positions, values))
            rows.append(row)
            if len(report.preview) < PREVIEW_ROWS:
                report.preview.append(list(row.cells.values()))
    except csv.Error as exc:
        raise _FileError(
            f"Row {number + 1} is not valid CSV ({exc}): a quote in a cell must be "
            'doubled ("") and a quoted cell must end with a quote before the next comma.',
            row=number + 1,
        ) from None
    if not header:
        _check_header(header, file_format.columns, file_format.required)
    report.rows = data_rows  # so far, only rows with too many cells are reported
    return rows


def _check_header(header: list[str], columns: Sequence[str], required: Sequence[str]) -> None:
    expected = ", ".join(columns)
    if not any(header):
        raise _FileError(f"Row 1 must be the header, with the columns: {expected}.")
    problems = []
    unnamed = [str(i) for i, name in enumerate(header, start=1) if not name]
    if unnamed:
        problems.append(f"header cell(s) {', '.join(unnamed)} have no column name")
    repeated = sorted({name for name in header if name and header.count(name) > 1})
    if repeated:
        problems.append(f"column(s) named twice: {', '.join(map(_shown, repeated))}")
    unknown = [name for name in header if name and name not in columns]
    if unknown:
        problems.append(f"unknown column(s): {', '.join(map(_shown, unknown))}")
    missing = [name for name in required if name not in header]
    if missing:
        problems.append(f"missing required column(s): {', '.join(missing)}")
    if problems:
        raise _FileError(
            f"The header is wrong: {'; '.join(problems)}. Expected columns: {expected} "
            f"(required: {', '.join(required)})."
        )


def _shown(name: str) -> str:
    """A header name as a message shows it: quoted and escaped when it holds characters that
    a terminal or a page would not show as themselves (control characters, line breaks)."""
    return name if name.isprintable() else repr(name)


# --- Cells ------------------------------------------------------------------------------------


class _Cells:
    """Parses the cells of one row, reporting each bad one (row, column, value, reason)."""

    def __init__(self, row: _Row, errors: list[RowError]) -> None:
        self.row, self.errors = row, errors

    def error(self, column: str, message: str, value: str | None = None) -> None:
        self.row.mark_bad(column)
        value = self.row.cells.get(column, "") if value is None else value
        self.errors.append(RowError(self.row.number, column, value, message))

    def text(self, column: str, *, required: bool = False) -> str:
        value = self.row.cells.get(column, "")
        if required and not value:
            self.error(column, "Required: this cell is empty.")
        return value

    def date(self, column: str, *, required: bool = False) -> date | None:
        value = self.text(column, required=required)
        if not value:
            return None
        if not _ISO_DATE.fullmatch(value):
            self.error(column, "Not a date in ISO format YYYY-MM-DD.")
            return None
        try:
            return date.fromisoformat(value)
        except ValueError:
            self.error(column, "No such date.")
            return None

    def whole_number(self, column: str) -> int | None:
        value = self.text(column, required=True)
        if value and not _WHOLE_NUMBER.fullmatch(value):
            self.error(column, "Not a whole number.")
        return int(value) if column not in self.row.bad else None

    def decimal(self, column: str) -> Decimal | None:
        value = self.text(column, required=True)
        if not value:
            return None
        try:
            number = Decimal(value)
        except InvalidOperation:
            number = None
        if number is None or not number.is_finite():
            self.error(
                column,
                "Not a number (write it like 10000.00: no currency sign, no thousands separator).",
            )
            return None
        return number

    def model_errors(self, exc: ValidationError, columns: dict[str, str]) -> None:
        """Report a model's validation errors under the file's columns, skipping the columns
        already reported (a date that did not parse is also "required" to the model)."""
        for field_name, messages in exc.message_dict.items():
            column = columns.get(field_name, "")
            if column and column in self.row.bad:
                continue
            for message in messages:
                self.error(column, message)


def _chunks(values: Iterable[Any]) -> Iterator[list[Any]]:
    values = list(values)
    for start in range(0, len(values), CHUNK):
        yield values[start : start + CHUNK]


def _by_lower_name(queryset: QuerySet[Any], names: Iterable[str], field_name: str) -> dict:
    """Rows whose `field_name` matches one of the (lower-case) names, ignoring case."""
    found: dict[str, Any] = {}
    for chunk in _chunks(sorted(names)):
        matches = queryset.annotate(_lower=Lower(field_name)).filter(_lower__in=chunk)
        for obj in matches:
            found.setdefault(obj._lower, obj)
    return found


def _validate(obj: Model, exclude: Sequence[str]) -> None:
    """The model's field rules and clean(), with no query: foreign keys are set from rows just
    looked up, and uniqueness is checked against what was loaded (and by the database)."""
    obj.full_clean(exclude=exclude, validate_unique=False, validate_constraints=False)


def _quoted_on_not_future(cells: _Cells, quoted_on: date | None, today: date) -> None:
    # The models accept a future quoted_on (tests and back-dated entries need it); a sheet of
    # quotes already given cannot have one, so it is a typo worth stopping the import for.
    if quoted_on and quoted_on > today:
        cells.error("quoted_on", f"Quoted-on date is in the future (today is {today}).")


# --- Orders -------------------------------------------------------------------------------------

_ORDER_FIELDS_TO_COLUMNS = {
    "po_number": "po_number",
    "vendor": "vendor",
    "buyer": "buyer_email",
    "status": "status",
    "placed_on": "placed_on",
    "need_by": "need_by",
    "currency": "currency",
    NON_FIELD_ERRORS: "",
}
_LINE_FIELDS_TO_COLUMNS = {
    "gpu_model": "gpu_model",
    "quantity": "quantity",
    "unit_price": "unit_price",
}
_QUOTE_FIELDS_TO_COLUMNS = {
    "quoted_on": "quoted_on",
    "delivery_date": "delivery_date",
    "note": "note",
    "line": "gpu_model",
    "order": "po_number",
    NON_FIELD_ERRORS: "",
}
# Order-level columns: every row of one PO must agree on them.
_ORDER_LEVEL = ("vendor", "buyer_email", "status", "currency", "placed_on", "need_by")


@dataclass(slots=True)
class _OrderRow:
    row: _Row
    po: str
    vendor: str
    email: str
    gpu: str
    quantity: int | None
    unit_price: Decimal | None
    currency: str
    placed_on: date | None
    need_by: date | None
    status: str | None  # None: not given
    quoted_on: date | None
    delivery_date: date | None

    @property
    def order_key(self) -> tuple[str, int]:
        """Rows of one PO share it (PO-1 and po-1 are one order); a row without a PO number
        (already an error) is alone."""
        return (self.po.lower(), 0) if self.po else ("", self.row.number)

    def same(self, column: str, other: _OrderRow) -> bool:
        mine, theirs = self.row.cells.get(column, ""), other.row.cells.get(column, "")
        if column in ("vendor", "buyer_email"):
            return mine.lower() == theirs.lower()
        return mine == theirs


class _OrdersPlan:
    """Checks an orders file against the database (a few queries per chunk of names, none per
    row) and keeps what must be created."""

    def __init__(
        self, rows: list[_Row], report: ImportReport, user: AbstractBaseUser | None, source: str
    ) -> None:
        self.rows, self.report, self.user, self.source = rows, report, user, source
        self.errors = report.errors
        # Lower-case name -> the new object, or the ValidationError that stops its creation.
        self.new_vendors: dict[str, Vendor | ValidationError] = {}
        self.new_gpus: dict[str, GpuModel | ValidationError] = {}
        self.new_users: dict[str, Any] = {}
        self.new_orders: list[PurchaseOrder] = []
        self.new_lines: list[OrderLine] = []
        self.new_quotes: list[DeliveryQuote] = []
        self.today = today()
        self.emails: dict[str, bool] = {}  # address -> valid, each checked once

    def check(self) -> None:
        parsed = [self._parse(row) for row in self.rows]
        orders: dict[tuple[str, int], _OrderRow] = {}  # PO -> its first row
        lines: dict[tuple, _OrderRow] = {}  # (PO, GPU model) -> its first row
        for item in parsed:
            first = orders.setdefault(item.order_key, item)
            for column in _ORDER_LEVEL:
                if not item.same(column, first):
                    self._conflict(item, column, first)
            first_line = lines.setdefault((item.order_key, item.gpu.lower()), item)
            for column in ("quantity", "unit_price"):
                mine, theirs = getattr(item, column), getattr(first_line, column)
                if None not in (mine, theirs) and mine != theirs:
                    self._conflict(item, column, first_line)
        self._load(orders.values(), lines.values())
        built = {key: self._order(item) for key, item in orders.items()}
        for item in lines.values():
            self._line(item, built[item.order_key])
        seen: set[tuple] = set()
        for item in parsed:
            if item.quoted_on and item.delivery_date:
                key = (item.order_key, item.quoted_on, item.delivery_date)
                if key not in seen:  # the same quote repeated on each line's row
                    seen.add(key)
                    self._quote(item, built[item.order_key])
        created = self.report.created
        created["vendors"] = sum(isinstance(v, Vendor) for v in self.new_vendors.values())
        created["GPU models"] = sum(isinstance(g, GpuModel) for g in self.new_gpus.values())
        created["buyers"] = len(self.new_users)
        created["orders"] = len(self.new_orders)
        created["order lines"] = len(self.new_lines)
        created["quotes"] = len(self.new_quotes)

    def write(self) -> None:
        # Parents first: orders, lines and quotes hold the objects created before them and
        # take the ids those got.
        bulk.insert_new([v for v in self.new_vendors.values() if isinstance(v, Vendor)])
        bulk.insert_new([g for g in self.new_gpus.values() if isinstance(g, GpuModel)])
        bulk.insert_new(list(self.new_users.values()), batch_size=CHUNK)
        roles.role_grant_new(users=list(self.new_users.values()), role=Role.BUYER, batch_size=CHUNK)
        bulk.insert_new(self.new_orders, batch_size=CHUNK)
        bulk.insert_new(self.new_lines, batch_size=CHUNK)
        services.quotes_add_bulk(quotes=self.new_quotes, batch_size=CHUNK)
        # quotes_add_bulk stored the schedules of the orders quoted; a new line of another
        # order changes its schedule too, and a new order counts on its vendor's scorecard
        # (bulk inserts send no signals: orders.schedules).
        quoted = {quote.order_id for quote in self.new_quotes}
        written = {line.order_id for line in self.new_lines} | {o.pk for o in self.new_orders}
        schedules.refresh(written - quoted)
        if self.new_lines:  # what the vendors charged are price points: judge the rises
            services.prices_check_after_commit()

    def _parse(self, row: _Row) -> _OrderRow:
        cells = _Cells(row, self.errors)
        for column in csv_format.ORDER_REQUIRED:
            cells.text(column, required=True)
        email = row.cells["buyer_email"]
        if email and "buyer_email" not in row.bad and not self._valid_email(email):
            cells.error("buyer_email", "Not an email address.")
        status = row.cells.get("status") or None
        if status is not None and status not in _STATUSES:
            cells.error("status", f"Unknown status; one of: {', '.join(OrderStatus.values)}.")
        quoted_on, delivery_date = cells.date("quoted_on"), cells.date("delivery_date")
        for given, needed in (("quoted_on", "delivery_date"), ("delivery_date", "quoted_on")):
            if row.cells.get(given) and not row.cells.get(needed):
                cells.error(needed, f"Required with {given}: a quote has both dates.")
        _quoted_on_not_future(cells, quoted_on, self.today)
        return _OrderRow(
            row=row,
            po=row.cells["po_number"],
            vendor=row.cells["vendor"],
            email=email.lower(),
            gpu=row.cells["gpu_model"],
            quantity=cells.whole_number("quantity"),
            unit_price=cells.decimal("unit_price"),
            currency=row.cells["currency"],
            placed_on=cells.date("placed_on", required=True),
            need_by=cells.date("need_by"),
            status=status,
            quoted_on=quoted_on,
            delivery_date=delivery_date,
        )

    def _valid_email(self, email: str) -> bool:
        if email not in self.emails:
            try:
                validate_email(email)
            except ValidationError:
                self.emails[email] = False
            else:
                self.emails[email] = True
        return self.emails[email]

    def _conflict(self, item: _OrderRow, column: str, first: _OrderRow) -> None:
        _Cells(item.row, self.errors).error(
            column,
            f"Duplicate PO {item.po} with conflicting data: row {first.row.number} has "
            f"{first.row.cells.get(column, '')!r}.",
        )

    def _load(self, orders: Iterable[_OrderRow], lines: Iterable[_OrderRow]) -> None:
        orders, lines = list(orders), list(lines)
        user_model = get_user_model()
        vendors = {i.vendor.lower() for i in orders if i.vendor}
        self.vendors = _by_lower_name(Vendor.objects.all(), vendors, "name")
        gpus = {i.gpu.lower() for i in lines if i.gpu}
        self.gpus = _by_lower_name(GpuModel.objects.all(), gpus, "name")
        emails = {i.email for i in orders if i.email and "buyer_email" not in i.row.bad}
        # Several accounts may share an address: prefer an active one, then the oldest.
        users = user_model.objects.order_by("-is_active", "pk")
        self.users = _by_lower_name(users, emails, "email")
        # By lower-case PO number: a file's po-1 is the recorded PO-1.
        self.existing: dict[str, PurchaseOrder] = _by_lower_name(
            PurchaseOrder.objects.select_related("vendor", "buyer"),
            {i.po.lower() for i in orders if i.po},
            "po_number",
        )
        self.existing_lines: dict[tuple[int, int], tuple[int, Decimal]] = {}
        self.existing_quotes: set[tuple[int, date, date]] = set()
        for chunk in _chunks(sorted(order.pk for order in self.existing.values())):
            for order_id, gpu_id, quantity, price in OrderLine.objects.filter(
                order_id__in=chunk
            ).values_list("order_id", "gpu_model_id", "quantity", "unit_price"):
                self.existing_lines[order_id, gpu_id] = (quantity, price)
            self.existing_quotes.update(
                DeliveryQuote.objects.filter(order_id__in=chunk, line__isnull=True).values_list(
                    "order_id", "quoted_on", "delivery_date"
                )
            )
        self.usernames = _usernames(sorted(emails - set(self.users)))

    def _order(self, item: _OrderRow) -> PurchaseOrder | None:
        """The recorded order (compared with the file) or a new, validated one; None when the
        file's data for it is not usable."""
        cells = _Cells(item.row, self.errors)
        existing = self.existing.get(item.po.lower())
        if existing is not None:
            if self._compare(existing, item, cells):
                self.report.unchanged["orders"] += 1
            return existing
        vendor, buyer = self._vendor(item, cells), self._buyer(item)
        order = PurchaseOrder(
            po_number=item.po,
            vendor=vendor,
            buyer=buyer,
            placed_on=item.placed_on,
            need_by=item.need_by,
            currency=item.currency,
        )
        if item.status:
            order.status = item.status
        try:
            _validate(order, exclude=("vendor", "buyer"))
        except ValidationError as exc:
            cells.model_errors(exc, _ORDER_FIELDS_TO_COLUMNS)
            return None
        if vendor is None or buyer is None or item.row.bad & {"po_number", *_ORDER_LEVEL}:
            return None
        self.new_orders.append(order)
        return order

    def _compare(self, order: PurchaseOrder, item: _OrderRow, cells: _Cells) -> bool:
        """Report each column where the file differs from the recorded order; True if none.
        Optional cells left empty say nothing, so they differ from nothing."""
        # column, as recorded, as in the file, as shown (names and addresses compare in any case)
        columns: list[tuple[str, str, str, str]] = [
            ("vendor", order.vendor.name.lower(), item.vendor.lower(), order.vendor.name),
            ("buyer_email", order.buyer.email.lower(), item.email, order.buyer.email),
            ("currency", order.currency, item.currency, order.currency),
            ("placed_on", str(order.placed_on), str(item.placed_on), str(order.placed_on)),
        ]
        if item.status:
            columns.append(("status", order.status, item.status, order.status))
        if item.need_by:
            need_by = str(order.need_by or "")
            columns.append(("need_by", need_by, str(item.need_by), need_by))
        same = True
        for column, recorded, in_file, shown in columns:
            if column in item.row.bad or recorded == in_file:
                continue
            same = False
            cells.error(
                column,
                f"PO {order.po_number} is already recorded with {column} "
                f"{repr(shown) if shown else 'empty'}: an import adds orders, it does not "
                "change them (edit the order in the admin, or fix the file).",
            )
        return same

    def _vendor(self, item: _OrderRow, cells: _Cells) -> Vendor | None:
        key = item.vendor.lower()
        if not key:
            return None
        if key in self.vendors:
            return self.vendors[key]
        if key not in self.new_vendors:
            vendor = Vendor(name=item.vendor, kind=_NEW_VENDOR_KIND, notes=_NEW_VENDOR_NOTE)
            try:
                _validate(vendor, exclude=())
            except ValidationError as exc:
                self.new_vendors[key] = exc
            else:
                self.new_vendors[key] = vendor
        found = self.new_vendors[key]
        if isinstance(found, ValidationError):
            cells.model_errors(found, {"name": "vendor", NON_FIELD_ERRORS: "vendor"})
            return None
        return found

    def _gpu(self, item: _OrderRow, cells: _Cells) -> GpuModel | None:
        key = item.gpu.lower()
        if not key:
            return None
        if key in self.gpus:
            return self.gpus[key]
        if key not in self.new_gpus:
            self.new_gpus[key] = _new_gpu(item.gpu)
        found = self.new_gpus[key]
        if isinstance(found, ValidationError):
            cells.model_errors(found, {"name": "gpu_model", "memory_gb": "gpu_model"})
            return None
        return found

    def _buyer(self, item: _OrderRow) -> Any:
        if not item.email or "buyer_email" in item.row.bad:
            return None
        if item.email in self.users:
            return self.users[item.email]
        if item.email not in self.new_users:
            user_model = get_user_model()
            # Active, so they are emailed about their orders' slips (alerts.order_recipients
            # tells only active users), and given the Buyer role on write. No password: they
            # set one with the login page's password reset (procurement.urls).
            user = user_model(
                username=self.usernames[item.email],
                email=user_model.objects.normalize_email(item.row.cells["buyer_email"]),
                is_active=True,
                is_staff=True,  # what role_grant_new would set, without an UPDATE
            )
            user.set_unusable_password()
            self.new_users[item.email] = user
        return self.new_users[item.email]

    def _line(self, item: _OrderRow, order: PurchaseOrder | None) -> None:
        cells = _Cells(item.row, self.errors)
        gpu = self._gpu(item, cells)
        if order is not None and order.pk and gpu is not None and gpu.pk:
            recorded = self.existing_lines.get((order.pk, gpu.pk))
            if recorded is not None:
                same = True
                for column, recorded_value, in_file in zip(
                    ("quantity", "unit_price"),
                    recorded,
                    (item.quantity, item.unit_price),
                    strict=True,
                ):
                    if column not in item.row.bad and recorded_value != in_file:
                        same = False
                        cells.error(
                            column,
                            f"PO {order.po_number} already has a line for {gpu.name} with "
                            f"{column} {str(recorded_value)!r}: an import does not change "
                            "order lines.",
                        )
                self.report.unchanged["order lines"] += same
                return
        line = OrderLine(
            order=order, gpu_model=gpu, quantity=item.quantity, unit_price=item.unit_price
        )
        try:
            _validate(line, exclude=("order", "gpu_model"))
        except ValidationError as exc:
            cells.model_errors(exc, _LINE_FIELDS_TO_COLUMNS)
            return
        if order is not None and gpu is not None:
            self.new_lines.append(line)

    def _quote(self, item: _OrderRow, order: PurchaseOrder | None) -> None:
        key = (order.pk if order else None, item.quoted_on, item.delivery_date)
        if key in self.existing_quotes:
            self.report.unchanged["quotes"] += 1
            return
        quote = DeliveryQuote(
            order=order,
            quoted_on=item.quoted_on,
            delivery_date=item.delivery_date,
            source=self.source,
            recorded_by=self.user,
        )
        try:
            services.quote_validate(quote=quote)
        except ValidationError as exc:
            _Cells(item.row, self.errors).model_errors(exc, _QUOTE_FIELDS_TO_COLUMNS)
            return
        if order is not None:
            self.new_quotes.append(quote)


def _new_gpu(name: str) -> GpuModel | ValidationError:
    """A GPU model the file names for the first time, or why it cannot be created."""
    match = _MEMORY_IN_NAME.search(name)
    memory = int(match.group(1)) if match else _KNOWN_MEMORY_GB.get(name.lower())
    if memory is None:
        return ValidationError(
            {
                "name": "Unknown GPU model, and its memory is not in its name: add it under "
                "GPU models in the admin first, or write the memory in the name (e.g. "
                "'H20 96GB')."
            }
        )
    gpu = GpuModel(name=name, memory_gb=memory)
    try:
        _validate(gpu, exclude=())
    except ValidationError as exc:
        return exc
    return gpu


def _usernames(emails: Sequence[str]) -> dict[str, str]:
    """A free username for each new buyer, derived from the (lower-case) email address."""
    user_model = get_user_model()
    wanted = {email: re.sub(r"[^\w.@+-]", "_", email)[:150] for email in emails}
    taken: set[str] = set()
    for chunk in _chunks(sorted(set(wanted.values()))):
        taken.update(
            user_model.objects.filter(username__in=chunk).values_list("username", flat=True)
        )
    names: dict[str, str] = {}
    for email, name in wanted.items():
        if name in taken:
            # Rare: someone's username is this address but their email is another. One query
            # for each such clash.
            base = name[:140]
            used = (
                set(
                    user_model.objects.filter(username__startswith=f"{base}-").values_list(
                        "username", flat=True
                    )
                )
                | taken
            )
            n = 2
            while f"{base}-{n}" in used:
                n += 1
            name = f"{base}-{n}"
        taken.add(name)
        names[email] = name
    return names


# --- Quotes ------------------------------------------------------------------------------------


class _QuotesPlan:
    """Checks a re-quote sheet against the recorded orders, lines and quotes (a few queries per
    chunk of PO numbers) and keeps the quotes to add."""

    def __init__(
        self, rows: list[_Row], report: ImportReport, user: AbstractBaseUser | None, source: str
    ) -> None:
        self.rows, self.report, self.user, self.source = rows, report, user, source
        self.errors = report.errors
        self.new_quotes: list[DeliveryQuote] = []
        self.today = today()

    def check(self) -> None:
        # By lower-case PO number: a sheet's po-1 is the recorded PO-1.
        orders: dict[str, PurchaseOrder] = _by_lower_name(
            PurchaseOrder.objects.only("id", "po_number", "placed_on"),
            {row.cells["po_number"].lower() for row in self.rows} - {""},
            "po_number",
        )
        lines: dict[tuple[int, str], OrderLine] = {}
        line_names: dict[int, list[str]] = {}
        seen: set[tuple] = set()
        for chunk in _chunks(sorted(order.pk for order in orders.values())):
            for line_id, order_id, gpu_name in OrderLine.objects.filter(
                order_id__in=chunk
            ).values_list("id", "order_id", "gpu_model__name"):
                lines[order_id, gpu_name.lower()] = OrderLine(id=line_id, order_id=order_id)
                line_names.setdefault(order_id, []).append(gpu_name)
            seen.update(
                DeliveryQuote.objects.filter(order_id__in=chunk).values_list(
                    "order_id", "line_id", "quoted_on", "delivery_date"
                )
            )
        for row in self.rows:
            cells = _Cells(row, self.errors)
            po = cells.text("po_number", required=True)
            quoted_on = cells.date("quoted_on", required=True)
            delivery_date = cells.date("delivery_date", required=True)
            _quoted_on_not_future(cells, quoted_on, self.today)
            order = orders.get(po.lower())
            if po and order is None:
                cells.error("po_number", "Unknown PO: no order has this number.")
            gpu = row.cells.get("gpu_model", "")
            line = None
            if order is not None and gpu:
                line = lines.get((order.pk, gpu.lower()))
                if line is None:
                    names = ", ".join(sorted(line_names.get(order.pk, []))) or "none"
                    cells.error(
                        "gpu_model", f"PO {po} has no line for this GPU model (its lines: {names})."
                    )
            quote = DeliveryQuote(
                order=order,
                line=line,
                quoted_on=quoted_on,
                delivery_date=delivery_date,
                note=row.cells.get("note", ""),
                source=self.source,
                recorded_by=self.user,
            )
            try:
                services.quote_validate(quote=quote)
            except ValidationError as exc:
                cells.model_errors(exc, _QUOTE_FIELDS_TO_COLUMNS)
            if row.bad:
                continue
            key = (order.pk, line.pk if line else None, quoted_on, delivery_date)
            if key in seen:
                self.report.unchanged["quotes"] += 1
                continue
            seen.add(key)
            self.new_quotes.append(quote)
        self.report.created["quotes"] = len(self.new_quotes)

    def write(self) -> None:
        services.quotes_add_bulk(quotes=self.new_quotes, batch_size=CHUNK)


# --- Prices -------------------------------------------------------------------------------------

_PRICE_FIELDS_TO_COLUMNS = {
    "vendor": "vendor",
    "gpu_model": "gpu_model",
    "unit_price": "unit_price",
    "currency": "currency",
    "quoted_on": "quoted_on",
    "note": "note",
    NON_FIELD_ERRORS: "",
}


class _PricesPlan:
    """Checks a price sheet against the recorded vendors, GPU models and prices (a few queries
    per chunk of names) and keeps the prices to add."""

    def __init__(self, rows: list[_Row], report: ImportReport, source: str) -> None:
        self.rows, self.report, self.source = rows, report, source
        self.errors = report.errors
        self.new_prices: list[PriceQuote] = []
        self.today = today()

    def check(self) -> None:
        vendors = _by_lower_name(
            Vendor.objects.all(), {r.cells["vendor"].lower() for r in self.rows}, "name"
        )
        gpus = _by_lower_name(
            GpuModel.objects.all(), {r.cells["gpu_model"].lower() for r in self.rows}, "name"
        )
        seen: set[tuple] = set()
        for chunk in _chunks(sorted(v.pk for v in vendors.values())):
            seen.update(
                PriceQuote.objects.filter(vendor_id__in=chunk).values_list(
                    "vendor_id", "gpu_model_id", "currency", "quoted_on", "unit_price"
                )
            )
        for row in self.rows:
            cells = _Cells(row, self.errors)
            vendor = vendors.get(cells.text("vendor", required=True).lower())
            if row.cells["vendor"] and vendor is None:
                cells.error("vendor", "Unknown vendor: add it in the admin first.")
            gpu = gpus.get(cells.text("gpu_model", required=True).lower())
            if row.cells["gpu_model"] and gpu is None:
                cells.error("gpu_model", "Unknown GPU model: add it in the admin first.")
            unit_price = cells.decimal("unit_price")
            quoted_on = cells.date("quoted_on", required=True)
            _quoted_on_not_future(cells, quoted_on, self.today)
            price = PriceQuote(
                vendor=vendor,
                gpu_model=gpu,
                unit_price=unit_price,
                currency=cells.text("currency", required=True),
                quoted_on=quoted_on,
                source=PriceQuote.Source.IMPORT,
                note=(row.cells.get("note", "") or self.source)[:200],
            )
            try:
                _validate(price, exclude=[c for c in ("vendor", "gpu_model") if c in row.bad])
            except ValidationError as exc:
                cells.model_errors(exc, _PRICE_FIELDS_TO_COLUMNS)
            if row.bad:
                continue
            key = (vendor.pk, gpu.pk, price.currency, quoted_on, price.unit_price)
            if key in seen:
                self.report.unchanged["price quotes"] += 1
                continue
            seen.add(key)
            self.new_prices.append(price)
        self.report.created["price quotes"] = len(self.new_prices)

    def write(self) -> None:
        services.prices_add_bulk(prices=self.new_prices)
