"""Bulk inserts, for the paths where Django's per-row preparation costs more than the work.

`insert_ignoring_conflicts`: one statement that skips rows a unique constraint already holds
and says which rows were new (the scans). `insert_new`: new model objects by PostgreSQL COPY,
`bulk_create` elsewhere (the imports). Either way the database checks every constraint and
runs every trigger; neither calls `save()` or sends signals, so both write the audit trail of
audited models themselves (orders.history: one creation record per row actually inserted).

Django's `bulk_create(ignore_conflicts=True)` cannot say which rows it inserted, and building
a model instance per row costs more than the scan that found them (bench/scan_slips.py: about
half of a first scan's time). Here the rows travel as one JSON parameter, expanded by the
database (`json_array_elements` on PostgreSQL, `json_each` on SQLite), so the statement is
the same size for 10 rows or 10,000 and Python only builds plain tuples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from itertools import islice
from typing import Any, TypeVar

from django.db import connection, models
from django.utils import timezone

from orders import history

T = TypeVar("T")


def chunks(values: Iterable[T], size: int) -> Iterator[list[T]]:
    """The values in lists of `size` (the last may be shorter), read lazily."""
    values = iter(values)
    while chunk := list(islice(values, size)):
        yield chunk


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)  # exact: a float would round it
    raise TypeError(f"cannot send {type(value).__name__} as a bulk insert value")


def _json_rows(vendor: str) -> tuple[str, str]:
    """The FROM item that expands one JSON parameter (a list of rows, each a list of
    values) into rows `r`, and the WHERE an INSERT ... SELECT from it needs."""
    if vendor == "postgresql":
        return "json_array_elements(%s::json) AS r(value)", ""
    if vendor == "sqlite":
        # SQLite needs a WHERE to read ON CONFLICT after INSERT ... SELECT.
        return "json_each(%s) AS r", " WHERE true"
    raise NotImplementedError(f"no bulk statements for {vendor}")  # pragma: no cover


def _json_value(i: int, field: models.Field, vendor: str) -> str:
    """Value `i` of a row from `_json_rows`, as the column `field` takes it."""
    value = f"(r.value ->> {i})"
    # ->> yields text on PostgreSQL (SQLite keeps the JSON type). Text stays text: an
    # explicit cast to varchar(n) would silently truncate, where the column's own
    # assignment cast refuses a value that is too long.
    if vendor == "postgresql" and not isinstance(field, models.CharField | models.TextField):
        return f"CAST({value} AS {field.db_type(connection)})"
    return value


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
    source, where = _json_rows(vendor)
    selected = [_json_value(i, f, vendor) for i, f in enumerate(fields[: len(columns)])]
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
        inserted = [tuple(row) for row in cursor.fetchall()]
    if history.is_audited(model):  # no signals here: record the rows actually inserted
        pk_at = list(returning).index("pk")  # an audited model's callers must return pk
        history.history_record_inserted(model, [row[pk_at] for row in inserted])
    return inserted


def add_counts(
    model: type[models.Model],
    *,
    keys: Sequence[str],
    counts: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Add to counters (a tally): each row is (*key values, *amounts); a row whose key is
    new is inserted, otherwise its amounts are added to the counts there (negative ones
    subtract). One statement whatever the number of rows; the rows are sorted by key first,
    so that concurrent writers lock the counters in the same order. `keys` must be a unique
    constraint's fields. Django's bulk_create(update_conflicts=True) can only overwrite a
    conflicting row, not add to it."""
    _upsert(model, keys=keys, values=counts, rows=rows, add=True)


def upsert(
    model: type[models.Model],
    *,
    keys: Sequence[str],
    values: Sequence[str],
    rows: Sequence[Sequence[Any]],
) -> None:
    """Insert rows (*key values, *values), or set the values of the row a key already has:
    `bulk_create(update_conflicts=True)` in one statement of one JSON parameter, without
    building a model instance per row (a JSON value, e.g. a JSONField's list, travels as
    it is). Rows are sorted by key, as in `add_counts`."""
    _upsert(model, keys=keys, values=values, rows=rows, add=False)


def _upsert(
    model: type[models.Model],
    *,
    keys: Sequence[str],
    values: Sequence[str],
    rows: Sequence[Sequence[Any]],
    add: bool,
) -> None:
    if not rows:
        return
    meta = model._meta
    quote = connection.ops.quote_name
    table = quote(meta.db_table)
    fields = [meta.get_field(name) for name in (*keys, *values)]
    vendor = connection.vendor
    source, where = _json_rows(vendor)
    selected = [_json_value(i, f, vendor) for i, f in enumerate(fields)]
    key_columns = ", ".join(quote(f.column) for f in fields[: len(keys)])
    updated = ", ".join(
        f"{quote(f.column)} = "
        + (f"{table}.{quote(f.column)} + " if add else "")
        + f"excluded.{quote(f.column)}"
        for f in fields[len(keys) :]
    )
    data = json.dumps(
        sorted(rows, key=lambda row: tuple(row[: len(keys)])),
        default=_json_default,
        separators=(",", ":"),
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({', '.join(quote(f.column) for f in fields)}) "
            f"SELECT {', '.join(selected)} FROM {source}{where} "
            f"ON CONFLICT ({key_columns}) DO UPDATE SET {updated}",
            [data],
        )


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


def update_by_pk(
    model: type[models.Model],
    column: str,
    pairs: Sequence[tuple[int, Any]],
    *,
    constants: Mapping[str, Any] | None = None,
    only_if: Mapping[str, Any] | None = None,
) -> int:
    """Set `column` to a value per row, given as (pk, value) pairs: `update_rows` with one
    column."""
    return update_rows(model, [column], pairs, constants=constants, only_if=only_if)


def update_rows(
    model: type[models.Model],
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    constants: Mapping[str, Any] | None = None,
    only_if: Mapping[str, Any] | None = None,
) -> int:
    """Set `columns` to values per row, each row given as (pk, *values), in one UPDATE
    whatever their number; returns how many rows changed. Django's `bulk_update` writes one
    CASE WHEN per row and column into each statement, which grows quadratically with the
    batch size.

    `constants`: other columns set to the same value on every row. `only_if`: column values
    a row must still have to be changed (a concurrent writer may have changed it since it
    was read)."""
    if not rows:
        return 0
    meta = model._meta
    quote = connection.ops.quote_name
    vendor = connection.vendor
    source, _ = _json_rows(vendor)  # UPDATE ... FROM: SQLite 3.33 and later
    pk_value = _json_value(0, meta.pk, vendor)
    table = quote(meta.db_table)
    sets = []
    for i, name in enumerate(columns, start=1):
        target = meta.get_field(name)
        sets.append(f"{quote(target.column)} = {_json_value(i, target, vendor)}")
    params: list[Any] = []
    for name, value in (constants or {}).items():
        field = meta.get_field(name)
        sets.append(f"{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    params.append(json.dumps([list(row) for row in rows], default=_json_default))
    conditions = [f"{table}.{quote(meta.pk.column)} = {pk_value}"]
    for name, value in (only_if or {}).items():
        field = meta.get_field(name)
        conditions.append(f"{table}.{quote(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = f"UPDATE {table} SET {', '.join(sets)} FROM {source} WHERE {' AND '.join(conditions)}"
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.rowcount


# COPY: Django's bulk_create spends about 100 us per row in Python preparing values (measured
# on a 100,000-row orders import, where it took half the time); COPY takes them as they are.
def insert_new(objs: Sequence[models.Model], *, batch_size: int = 2000) -> None:
    """Insert unsaved objects of one model and set their primary keys, as `bulk_create` does.

    Foreign keys may hold objects saved just before (their ids are taken now); auto_now and
    auto_now_add fields get one timestamp for the whole call."""
    if not objs:
        return
    model = type(objs[0])
    if connection.vendor != "postgresql":
        model._default_manager.bulk_create(objs, batch_size=batch_size)
        history.history_record_created(objs)  # bulk_create sends no signals either
        return
    meta = model._meta
    fields = list(meta.concrete_fields)
    now = timezone.now()
    stamped = [
        f.attname
        for f in fields
        if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False)
    ]
    for obj in objs:
        # What bulk_create does first: copy the ids of related objects saved since assignment.
        obj._prepare_related_fields_for_save(operation_name="insert_new")
        for attname in stamped:
            setattr(obj, attname, now)
    quote = connection.ops.quote_name
    with connection.cursor() as cursor, connection.wrap_database_errors:
        # Ids come from the table's own sequence, so later inserts through the ORM go on.
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(objs)],
        )
        for obj, (pk,) in zip(objs, cursor.fetchall(), strict=True):
            obj.pk = pk
        columns = ", ".join(quote(f.column) for f in fields)
        attnames = [f.attname for f in fields]
        with cursor.copy(f"COPY {quote(meta.db_table)} ({columns}) FROM STDIN") as copy:
            for obj in objs:
                copy.write_row([getattr(obj, attname) for attname in attnames])
    for obj in objs:
        obj._state.adding = False
        obj._state.db = connection.alias
    history.history_record_created(objs)
