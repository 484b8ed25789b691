"""Recording the audit trail: who changed which order, line, quote, receipt, price or
allocation, when, and why.

Saves and deletes are recorded by django-simple-history's signals (`AuditedHistory` on each
audited model). The bulk paths send no signals (orders.bulk: COPY, bulk_create, INSERT ...
SELECT), so they call `history_record_created` for exactly the rows they inserted.

Who: the user a caller names (`instance._history_user`, `acting(user=...)`), else the logged-in
user of the current request (simple_history's HistoryRequestMiddleware), else nobody (a
management command or a Celery task). Why: `acting(reason=...)`, e.g. "import_orders FILE".
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import connection, models
from django.utils import timezone
from simple_history.models import HistoricalRecords

# Longer than simple_history's default 100 characters: a reason names a command and a file.
REASON_MAX_LENGTH = 300
_STAMP_COLUMNS = ("history_date", "history_type", "history_user_id", "history_change_reason")


@dataclass(frozen=True)
class _Acting:
    user: Any = None
    reason: str = ""


_acting: ContextVar[_Acting] = ContextVar("orders_history_acting", default=_Acting())  # noqa: B039 (frozen)


@contextmanager
def acting(*, user: Any = None, reason: str = "") -> Iterator[None]:
    """Attribute the changes made inside to `user` (when given and logged in) with `reason`
    (when given); an inner `acting` keeps what it does not set from the outer one."""
    outer = _acting.get()
    if user is not None and not getattr(user, "is_authenticated", False):
        user = None
    token = _acting.set(_Acting(user=user or outer.user, reason=reason or outer.reason))
    try:
        yield
    finally:
        _acting.reset(token)


def current_reason() -> str:
    return _acting.get().reason[:REASON_MAX_LENGTH]


def _history_user(instance: models.Model | None = None, request: Any = None, **kwargs: Any) -> Any:
    """simple_history's `get_user` hook: the user of the enclosing `acting()`, else the
    request's (simple_history passes a request only when its user is logged in)."""
    named = _acting.get().user
    if named is not None or request is None:
        return named
    return request.user


class AuditedHistory(HistoricalRecords):
    """HistoricalRecords with this project's user and reason: see the module docstring.

    Historical tables are read by object id, by order (orders.audit) and by date; callers
    pass `no_db_index` for the other columns simple_history would index, since every index
    costs on the 200,000 records a 100,000-row import writes."""

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("get_user", _history_user)
        kwargs.setdefault(
            "history_change_reason_field",
            models.CharField(max_length=REASON_MAX_LENGTH, null=True, blank=True),
        )
        super().__init__(**kwargs)

    def get_change_reason_for_object(self, instance: models.Model, history_type: str, using: Any):
        return super().get_change_reason_for_object(instance, history_type, using) or (
            current_reason()
        )


def is_audited(model: type[models.Model]) -> bool:
    return hasattr(model._meta, "simple_history_manager_attribute")


def history_model(model: type[models.Model]) -> type[models.Model]:
    return getattr(model, model._meta.simple_history_manager_attribute).model


def history_record_created(
    objs: Sequence[models.Model], *, user: Any = None, reason: str = ""
) -> int:
    """Record a creation ('+') for each of `objs`, already inserted by a path that sends no
    signals (orders.bulk). Returns how many records were written.

    `user` and `reason` default to the objects' `_history_user` (see attribute_to), else the
    current request's or `acting()`'s, as for a save."""
    if not objs:
        return 0
    if user is None:
        user = getattr(objs[0], "_history_user", None)
    return history_record_inserted(
        type(objs[0]), [obj.pk for obj in objs], user=user, reason=reason
    )


def history_record_inserted(
    model: type[models.Model], pks: Sequence[Any], *, user: Any = None, reason: str = ""
) -> int:
    """Record a creation ('+') for each row of `model` with these primary keys, in one
    INSERT ... SELECT per 20,000 rows: the database copies the rows as it stored them, so no
    value travels back and forth and Python builds nothing per row (a 100,000-row import
    writes 200,000 records: as model instances, or even as COPY tuples, that cost seconds)."""
    if not pks or not is_audited(model):
        return 0
    historical = history_model(model)
    if user is None:
        user = _history_user(request=_request_user_request())
    reason = (reason or current_reason())[:REASON_MAX_LENGTH]
    quote = connection.ops.quote_name
    columns = [quote(f.column) for f in historical.tracked_fields]
    stamp_columns = [quote(historical._meta.get_field(name).column) for name in _STAMP_COLUMNS]
    if connection.vendor == "postgresql":
        selected = "= ANY(%s)"
    else:  # SQLite: the ids as one JSON parameter, as orders.bulk sends rows
        selected = "IN (SELECT value FROM json_each(%s))"
    sql = (
        f"INSERT INTO {quote(historical._meta.db_table)} ({', '.join(columns + stamp_columns)}) "
        f"SELECT {', '.join(columns)}, %s, %s, %s, %s FROM {quote(model._meta.db_table)} "
        f"WHERE {quote(model._meta.pk.column)} {selected}"
    )
    stamp = [
        connection.ops.adapt_datetimefield_value(timezone.now()),
        "+",
        getattr(user, "pk", None),
        reason,
    ]
    ids = list(pks)
    written = 0
    with connection.cursor() as cursor:
        for start in range(0, len(ids), 20_000):
            chunk = ids[start : start + 20_000]
            param = chunk if connection.vendor == "postgresql" else json.dumps(chunk)
            cursor.execute(sql, [*stamp, param])
            written += cursor.rowcount
    return written


def _request_user_request() -> Any:
    """The current request if its user is logged in (HistoryRequestMiddleware), else None."""
    request = getattr(HistoricalRecords.context, "request", None)
    user = getattr(request, "user", None)
    return request if user is not None and user.is_authenticated else None


def attribute_to(instance: models.Model, user: Any) -> None:
    """Record the next save or delete of `instance` as `user`'s, when a service is told who
    acts (e.g. `recorded_by`); otherwise the request's or `acting()`'s user applies."""
    if user is not None and getattr(user, "is_authenticated", False):
        instance._history_user = user  # read by simple_history's get_history_user
