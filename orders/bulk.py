"""One-statement bulk inserts that skip rows a unique constraint already holds and say which
rows were new.

Django's `bulk_create(ignore_conflicts=True)` cannot say which rows it inserted, and building
a model instance per row costs more than the scan that found them (bench/scan_slips.py: about
half of a first scan's time). Here the rows travel as one JSON parameter, expanded by the
database (`json_array_elements` on PostgreSQL, `json_each` on SQLite), so the statement is
the same size for 10 rows or 10,000 and Python only builds plain tuples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db import connection, models
from django.utils import timezone


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact: a float would round it
    raise TypeError(f"cannot send {type(value).__name__} as a bulk insert value")


def insert_ignoring_conflicts(
    model: type[models.Model],
    *,
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    constants: Mapping[str, Any] | None = None,
    returning: Sequence[str] = ("pk",),
) -> list[tuple[Any, ...]]:
    """INSERT the rows (values in `columns` order; None for NULL), each with the same
    `constants`, skipping any that conflict with a unique constraint.

    Returns the `returning` columns of the rows actually inserted, so concurrent writers can
    each tell exactly what they added. Values are sent as given: ints, strings, dates; the
    caller prepares them (the scan builds them from database values already)."""
    if not rows:
        return []
    constants = dict(constants or {})
    meta = model._meta
    quote = connection.ops.quote_name
    fields = [meta.get_field(name) for name in (*columns, *constants)]
    vendor = connection.vendor
    if vendor == "postgresql":
        source = "json_array_elements(%s::json) AS r(value)"
        where = ""
    elif vendor == "sqlite":
        source = "json_each(%s) AS r"
        where = " WHERE true"  # SQLite needs it to read ON CONFLICT after INSERT ... SELECT
    else:  # pragma: no cover - the project runs on PostgreSQL and SQLite only
        raise NotImplementedError(f"no bulk insert for {vendor}")

    selected = []
    for i, column_field in enumerate(fields[: len(columns)]):
        value = f"(r.value ->> {i})"
        # ->> yields text on PostgreSQL (SQLite keeps the JSON type). Text stays text: an
        # explicit cast to varchar(n) would silently truncate, where the column's own
        # assignment cast refuses a value that is too long.
        is_text = isinstance(column_field, models.CharField | models.TextField)
        if vendor == "postgresql" and not is_text:
            value = f"CAST({value} AS {column_field.db_type(connection)})"
        selected.append(value)
    selected += ["%s"] * len(constants)
    params = [
        meta.get_field(name).get_db_prep_save(value, connection)
        for name, value in constants.items()
    ]
    params.append(json.dumps(rows, default=_json_default, separators=(",", ":")))
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(f.column) for f in fields)}) "
        f"SELECT {', '.join(selected)} FROM {source}{where} ON CONFLICT DO NOTHING"
    )
    sql += " RETURNING " + ", ".join(
        quote(meta.pk.column if name == "pk" else meta.get_field(name).column) for name in returning
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(row) for row in cursor.fetchall()]


def insert_notices(
    rows: Iterable[tuple[int, int | None, str, int]], *, about: type[models.Model] | None = None
) -> int:
    """Notices (alert id, recipient id, email, round) not already there; how many were new.
    `about` is the alert model the ids belong to: SlipAlert (the default) or PriceAlert."""
    from orders.models import AlertNotice, PriceAlert

    column = "price_alert_id" if about is PriceAlert else "alert_id"
    return len(
        insert_ignoring_conflicts(
            AlertNotice,
            columns=(column, "recipient_id", "recipient_email", "round"),
            rows=list(rows),
            constants={"skipped_reason": "", "created_at": timezone.now()},
        )
    )
