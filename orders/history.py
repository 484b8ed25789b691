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

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from operator import attrgetter
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
    """simple_history's `get_user` hook: the request's user (it passes one only when logged
    in), else the user of the enclosing `acting()`."""
    if request is not None:
        return request.user
    return _acting.get().user


class AuditedHistory(HistoricalRecords):
    """HistoricalRecords with this project's user and reason: see the module docstring."""

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
    signals, in one bulk insert (COPY on PostgreSQL). Returns how many records were written.

    `user` and `reason` default to the current `acting()` / request, as for a save."""
    if not objs:
        return 0
    model = type(objs[0])
    if not is_audited(model):
        return 0
    historical = history_model(model)
    user = user if user is not None else historical.get_default_history_user(objs[0])
    user_id = getattr(user, "pk", None)
    reason = (reason or current_reason())[:REASON_MAX_LENGTH]
    now = timezone.now()
    attnames = [field.attname for field in historical.tracked_fields]
    stamp = (now, "+", user_id, reason)
    from orders import bulk  # orders.bulk calls back here: imported late to avoid a cycle

    if connection.vendor == "postgresql":
        # Plain tuples by COPY: a model instance per record cost more than the import's own
        # rows (a 100,000-row import builds 200,000 records).
        values = attrgetter(*attnames)
        bulk.copy_rows(
            historical,
            columns=(*attnames, *_STAMP_COLUMNS),
            rows=((*values(obj), *stamp) for obj in objs),
        )
    else:
        historical._default_manager.bulk_create(
            [
                historical(
                    **{attname: getattr(obj, attname) for attname in attnames},
                    **dict(zip(_STAMP_COLUMNS, stamp, strict=True)),
                )
                for obj in objs
            ],
            batch_size=2000,
        )
    return len(objs)


def history_record_inserted(model: type[models.Model], pks: Sequence[Any]) -> int:
    """As history_record_created, for rows known only by primary key (an INSERT ... RETURNING
    pk): reads them back, 2,000 per query, so the records hold what the database stored."""
    if not is_audited(model) or not pks:
        return 0
    written = 0
    ordered = sorted(pks)
    for start in range(0, len(ordered), 2000):
        chunk = ordered[start : start + 2000]
        written += history_record_created(
            list(model._default_manager.filter(pk__in=chunk).order_by("pk"))
        )
    return written


def attribute_to(instance: models.Model, user: Any) -> None:
    """Record the next save or delete of `instance` as `user`'s, when a service is told who
    acts (e.g. `recorded_by`); otherwise the request's or `acting()`'s user applies."""
    if user is not None and getattr(user, "is_authenticated", False):
        instance._history_user = user  # read by simple_history's get_history_user
