"""Database functions Django does not ship: a median that runs on PostgreSQL and SQLite."""

from __future__ import annotations

import statistics
from typing import Any

from django.db.backends.signals import connection_created
from django.db.models import Aggregate, FloatField


class Median(Aggregate):
    """The median of a numeric expression (NULLs ignored; NULL for no rows).

    PostgreSQL's ordered-set aggregate `percentile_cont(0.5)`; on SQLite an aggregate function
    registered on each new connection (as Django registers its own SQLite functions)."""

    function = "percentile_cont"
    name = "Median"
    output_field = FloatField()
    template = "%(function)s(0.5) WITHIN GROUP (ORDER BY %(expressions)s)"
    allow_distinct = False

    def as_sqlite(self, compiler: Any, connection: Any, **extra: Any) -> tuple[str, list[Any]]:
        return super().as_sql(
            compiler,
            connection,
            function="procurement_median",
            template="%(function)s(%(expressions)s)",
            **extra,
        )


class _SqliteMedian:
    def __init__(self) -> None:
        self.values: list[float] = []

    def step(self, value: float | None) -> None:
        if value is not None:
            self.values.append(value)

    def finalize(self) -> float | None:
        return statistics.median(self.values) if self.values else None


def _register_sqlite_functions(sender: Any, connection: Any, **kwargs: Any) -> None:
    if connection.vendor == "sqlite":
        connection.connection.create_aggregate("procurement_median", 1, _SqliteMedian)


def install() -> None:
    connection_created.connect(_register_sqlite_functions, dispatch_uid="procurement_median")
