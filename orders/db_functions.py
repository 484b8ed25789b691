"""Database functions Django does not ship, running on PostgreSQL and SQLite alike (days
between dates, a case-folding lower() for SQLite, distinct values of a column by its index),
and percentiles of a tally's counts as PostgreSQL's percentile_cont computes them."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.db import connection
from django.db.backends.signals import connection_created
from django.db.models import Func, IntegerField

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler


def percentile_of_counts(counts: Sequence[tuple[float, int]], fraction: float) -> float | None:
    """PostgreSQL's `percentile_cont(fraction)` of a histogram: (value, how many times) pairs
    sorted by value, as if each value were listed that many times. The value at `fraction`
    (0 to 1) of the sorted values, interpolating linearly between the two nearest; None when
    there is nothing."""
    if not 0 <= fraction <= 1:
        raise ValueError(f"Percentile fraction must be between 0 and 1, not {fraction}.")
    total = sum(n for _, n in counts)
    if total <= 0:
        return None
    position = fraction * (total - 1)
    low_rank, high_rank = math.floor(position), math.ceil(position)
    ranked = _value_at_ranks(counts, (low_rank, high_rank))
    low, high = ranked[low_rank], ranked[high_rank]
    return low + (high - low) * (position - low_rank)


def _value_at_ranks(counts: Sequence[tuple[float, int]], ranks: Sequence[int]) -> dict[int, float]:
    """The value at each 0-based rank of the values listed by `counts`, in ascending order."""
    found: dict[int, float] = {}
    wanted = sorted(set(ranks))
    seen = 0
    for value, n in counts:
        seen += n
        while wanted and wanted[0] < seen:
            found[wanted.pop(0)] = value
        if not wanted:
            break
    return found


def _lower(value: Any) -> Any:
    return value.lower() if isinstance(value, str) else value


def _register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        # SQLite's own lower() folds ASCII letters only, so "À" and "à" would be two PO
        # numbers to the case-insensitive unique index while Python (the imports' lookups)
        # and PostgreSQL fold them alike: Python's lower() in its place.
        connection.connection.create_function("lower", 1, _lower, deterministic=True)


def install() -> None:
    connection_created.connect(_register_sqlite_functions, dispatch_uid="procurement_sqlite")


class DaysBetween(Func):
    """Whole days from the second date expression to the first (end - start)."""

    arity = 2
    output_field = IntegerField()
    template = "(%(expressions)s)"
    arg_joiner = " - "  # date - date is an integer number of days in PostgreSQL

    def as_sqlite(
        self, compiler: SQLCompiler, connection: BaseDatabaseWrapper, **extra: Any
    ) -> tuple[str, list[Any]]:
        return self.as_sql(
            compiler,
            connection,
            template="CAST(julianday(%(expressions)s) AS INTEGER)",
            arg_joiner=") - julianday(",
            **extra,
        )


def distinct_values(model: Any, column: str) -> list[Any]:
    """The distinct non-null values of `model`'s `column` (a foreign key's column, indexed).

    On PostgreSQL a loose index scan: a recursive query that jumps along the column's index
    from one value to the next, one index lookup per distinct value, where SELECT DISTINCT
    reads every row (PostgreSQL has no skip scan; the ORM cannot say a recursive query, hence
    the SQL). Elsewhere SELECT DISTINCT."""
    if connection.vendor != "postgresql":
        return list(
            model._default_manager.exclude(**{f"{column}__isnull": True})
            .order_by()
            .values_list(column, flat=True)
            .distinct()
        )
    table = connection.ops.quote_name(model._meta.db_table)
    name = connection.ops.quote_name(model._meta.get_field(column).column)
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH RECURSIVE keys (value) AS ("
            f" SELECT MIN({name}) FROM {table}"
            f" UNION ALL"
            f" SELECT (SELECT MIN({name}) FROM {table} WHERE {name} > keys.value)"
            f" FROM keys WHERE keys.value IS NOT NULL"
            f") SELECT value FROM keys WHERE value IS NOT NULL"
        )
        return [value for (value,) in cursor.fetchall()]
