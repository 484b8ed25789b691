"""Reading the audit trail: who created, changed or deleted what, when, and why, with the
fields that changed (old -> new), for one order (its own records and its lines', quotes',
receipts' and allocations') or for everything (`manage.py export_history`).

Recording is orders.history's job. Here the records of each audited model are read in one
query, ordered by object and time, and each record is compared with the one before it of
the same object in Python: a fixed number of queries whatever the number of changes (no
`prev_record` query per row). Names of vendors, GPU models, users and quotas are read once
per kind; PO numbers and line GPU models come with each record (subqueries).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from itertools import groupby
from operator import itemgetter
from typing import Any

from django.contrib.auth import get_user_model
from django.db import models
from django.db.models import F, OuterRef, Q, QuerySet, Subquery, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

from orders.exports import neutralise
from orders.history import history_model
from orders.models import (
    Allocation,
    Delivery,
    DeliveryQuote,
    GpuModel,
    OrderLine,
    PriceQuote,
    PurchaseOrder,
    Quota,
    Vendor,
)

ACTIONS = {"+": "created", "~": "changed", "-": "deleted"}
HISTORY_COLUMNS = (
    "when",
    "who",
    "model",
    "object_id",
    "object",
    "po_number",
    "action",
    "changes",
    "reason",
)
# Never listed: the id is its own column, the creation time is the record's.
_HIDDEN = frozenset({"id", "created_at"})
NOT_RECORDED = "earlier values not recorded"

Names = dict[type[models.Model], dict[Any, str]]


@dataclass(frozen=True)
class FieldChange:
    field: str
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.field}: {self.old or '(empty)'} -> {self.new or '(empty)'}"


@dataclass
class TrailEntry:
    """One historical record, readable: what happened to which object, by whom, and what
    changed (for a creation, the values it was created with)."""

    when: datetime
    who: str
    model: str
    object_id: int
    object: str
    po_number: str
    action: str  # "+", "~" or "-"
    reason: str
    history_id: int
    changes: list[FieldChange] = field(default_factory=list)
    complete: bool = True  # False: a change with no earlier record to compare with

    @property
    def action_label(self) -> str:
        return ACTIONS[self.action]

    def changes_text(self) -> str:
        if self.action == "+":
            return "; ".join(f"{c.field}: {c.new}" for c in self.changes)
        text = "; ".join(map(str, self.changes))
        return text if self.complete else f"({NOT_RECORDED}) {text}".strip()


def _user_name(user: Any) -> str:
    return user.get_username()


@dataclass(frozen=True)
class Audited:
    """How one audited model reads in the trail. `key` is export_history's --model name."""

    key: str
    model: type[models.Model]
    describe: Callable[[dict[str, Any], Names], str]
    order_ref: str | None  # the field leading to the order: "order_id", "line_id" or None

    @property
    def history(self) -> type[models.Model]:
        return history_model(self.model)

    @property
    def fields(self) -> list[models.Field]:
        return list(self.history.tracked_fields)


def _name(names: Names, model: type[models.Model], pk: Any) -> str:
    if pk is None:
        return ""
    return names.get(model, {}).get(pk, f"#{pk}")


def _describe_line(r: dict[str, Any], names: Names) -> str:
    return f"{_name(names, GpuModel, r['gpu_model_id'])} line"


def _describe_quote(r: dict[str, Any], names: Names) -> str:
    scope = f" for the {r['line_gpu']} line" if r["line_id"] else ""
    return f"delivery {r['delivery_date']} quoted {r['quoted_on']}{scope}"


def _describe_receipt(r: dict[str, Any], names: Names) -> str:
    return f"{r['quantity']} x {r['line_gpu']} received {r['delivered_on']}"


def _describe_price(r: dict[str, Any], names: Names) -> str:
    return (
        f"{_name(names, GpuModel, r['gpu_model_id'])} from {_name(names, Vendor, r['vendor_id'])}"
        f": {r['unit_price']} {r['currency']} on {r['quoted_on']}"
    )


def _describe_allocation(r: dict[str, Any], names: Names) -> str:
    return f"{r['gpus']} x {r['line_gpu']} for {_name(names, Quota, r['quota_id'])}"


AUDITED: tuple[Audited, ...] = (
    Audited("order", PurchaseOrder, lambda r, names: r["po_number"], None),
    Audited("line", OrderLine, _describe_line, "order_id"),
    Audited("quote", DeliveryQuote, _describe_quote, "order_id"),
    Audited("receipt", Delivery, _describe_receipt, "order_id"),
    Audited("price", PriceQuote, _describe_price, None),
    Audited("allocation", Allocation, _describe_allocation, "line_id"),
)
AUDITED_BY_KEY = {spec.key: spec for spec in AUDITED}


# --- Reading records ----------------------------------------------------------------------------


def _latest(history: type[models.Model], ref: Any, column: str) -> Subquery:
    return Subquery(
        history.objects.filter(id=ref).order_by("-history_date", "-history_id").values(column)[:1]
    )


def _po_number(order_ref: Any) -> Coalesce:
    """The PO number of an order id: the order's, or its last recorded one if deleted."""
    return Coalesce(
        Subquery(PurchaseOrder.objects.filter(pk=order_ref).values("po_number")[:1]),
        _latest(history_model(PurchaseOrder), order_ref, "po_number"),
        Value(""),
    )


def _line_column(column: str) -> Coalesce:
    """A column of the record's order line: the line's, or its last recorded one."""
    ref = OuterRef("line_id")
    return Coalesce(
        Subquery(OrderLine.objects.filter(pk=ref).values(column)[:1]),
        _latest(history_model(OrderLine), ref, column),
    )


def records(spec: Audited, queryset: QuerySet | None = None) -> QuerySet:
    """The spec's historical records as dicts, by object, then time: each field's value,
    the record's history columns, `who` (username), `po_number` and, for records with a
    line, `line_gpu`. One query."""
    history = spec.history
    qs = queryset if queryset is not None else history.objects.all()
    annotations: dict[str, Any] = {"who": F("history_user__username")}
    if spec.order_ref == "order_id":
        annotations["po"] = _po_number(OuterRef("order_id"))
    if "line_id" in {f.attname for f in spec.fields}:
        annotations["line_gpu"] = Coalesce(_line_column("gpu_model__name"), Value(""))
    if spec.order_ref == "line_id":
        annotations["line_order_id"] = _line_column("order_id")
    qs = qs.annotate(**annotations)
    if spec.order_ref == "line_id":
        qs = qs.annotate(po=_po_number(OuterRef("line_order_id")))
    return qs.values(
        *(f.attname for f in spec.fields),
        "history_id",
        "history_date",
        "history_type",
        "history_change_reason",
        "history_user_id",
        *annotations,
        *(["po"] if spec.order_ref == "line_id" else []),
    ).order_by("id", "history_date", "history_id")


def _show(model_field: models.Field, value: Any, names: Names, record: dict[str, Any]) -> str:
    """A value as a buyer reads it: names for ids, labels for codes, ISO dates."""
    if value is None or value == "":
        return ""
    if isinstance(model_field, models.ForeignKey):
        related = model_field.related_model
        if related is OrderLine and value == record.get("line_id") and record.get("line_gpu"):
            return f"{record['line_gpu']} line"
        if related is PurchaseOrder and record.get("po"):
            return record["po"]
        return _name(names, related, value)
    if model_field.choices:
        return str(dict(model_field.flatchoices).get(value, value))
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return format(value, "f")
    return str(value)


def _label(model_field: models.Field) -> str:
    return str(model_field.verbose_name)


def entries(spec: Audited, rows: Iterable[dict[str, Any]], names: Names) -> Iterator[TrailEntry]:
    """Readable entries from `records()` rows (by object, then time): each compared with the
    record before it of the same object."""
    fields = [f for f in spec.fields if f.name not in _HIDDEN]
    for _, group in groupby(rows, key=itemgetter("id")):
        previous: dict[str, Any] | None = None
        for row in group:
            entry = TrailEntry(
                when=row["history_date"],
                who=row["who"] or "",
                model=spec.key,
                object_id=row["id"],
                object=spec.describe(row, names),
                po_number=row.get("po") or (row["po_number"] if spec.key == "order" else ""),
                action=row["history_type"],
                reason=row["history_change_reason"] or "",
                history_id=row["history_id"],
            )
            if entry.action == "+":
                entry.changes = [
                    FieldChange(_label(f), "", shown)
                    for f in fields
                    if f.attname != "order_id" and (shown := _show(f, row[f.attname], names, row))
                ]
            elif entry.action == "~":
                entry.complete = previous is not None
                entry.changes = [
                    FieldChange(
                        _label(f),
                        _show(f, previous[f.attname], names, previous) if previous else "",
                        _show(f, row[f.attname], names, row),
                    )
                    for f in fields
                    if previous is not None and previous[f.attname] != row[f.attname]
                ]
            yield entry
            previous = row


def _name_maps(ids: dict[type[models.Model], set[Any]] | None) -> Names:
    """Display names of vendors, GPU models, users and quotas: those in `ids`, or all of
    them (None). One query per kind."""
    user_model = get_user_model()
    sources: dict[type[models.Model], Callable[[QuerySet], Iterable[tuple[Any, str]]]] = {
        Vendor: lambda qs: qs.values_list("pk", "name"),
        GpuModel: lambda qs: qs.values_list("pk", "name"),
        user_model: lambda qs: ((u.pk, _user_name(u)) for u in qs.only(user_model.USERNAME_FIELD)),
        Quota: lambda qs: (
            (q.pk, f"{q.team.name} ({q.gpu_model.name}, {q.period})")
            for q in qs.select_related("team", "gpu_model")
        ),
    }
    names: Names = {}
    for model, read in sources.items():
        qs = model._default_manager.order_by()
        if ids is not None:
            qs = qs.filter(pk__in=sorted(ids.get(model, ())))
        names[model] = dict(read(qs))
    return names


def _referenced_ids(specs_rows: Iterable[tuple[Audited, list[dict[str, Any]]]]) -> dict:
    ids: dict[type[models.Model], set[Any]] = defaultdict(set)
    for spec, rows in specs_rows:
        for f in spec.fields:
            if isinstance(f, models.ForeignKey):
                ids[f.related_model].update(r[f.attname] for r in rows if r[f.attname])
    return ids


# --- One order ----------------------------------------------------------------------------------


def order_trail(order_id: int) -> list[TrailEntry]:
    """Every record of the order and of its lines, quotes, receipts and allocations, newest
    first. A fixed number of queries (five for the records, four for names)."""
    lines_ever = Q(
        line_id__in=history_model(OrderLine).objects.filter(order_id=order_id).values("id")
    ) | Q(line_id__in=OrderLine.objects.filter(order_id=order_id).values("id"))
    selections = {
        "order": Q(id=order_id),
        "line": Q(order_id=order_id),
        "quote": Q(order_id=order_id),
        "receipt": Q(order_id=order_id),
        "allocation": lines_ever,
    }
    read = [
        (spec, list(records(spec, spec.history.objects.filter(selections[spec.key]))))
        for spec in AUDITED
        if spec.key in selections
    ]
    names = _name_maps(_referenced_ids(read))
    trail = [entry for spec, rows in read for entry in entries(spec, rows, names)]
    trail.sort(key=lambda e: (e.when, e.history_id), reverse=True)
    return trail


# --- Export -------------------------------------------------------------------------------------


def history_rows(
    *, since: datetime | None = None, model_keys: Sequence[str] | None = None
) -> Iterator[list[str]]:
    """CSV rows (HISTORY_COLUMNS) of every record, or of those at or after `since`, of the
    chosen models: model by model, then by object and time. Streams: one query per model
    plus one per kind of name, read 2,000 rows at a time. Text cells are formula-safe."""
    names = _name_maps(None)
    for spec in AUDITED:
        if model_keys and spec.key not in model_keys:
            continue
        history = spec.history.objects.all()
        if since is not None:
            # Whole histories of objects changed since then: a change is compared with the
            # record before it, which may be older.
            history = history.filter(
                id__in=spec.history.objects.filter(history_date__gte=since).values("id")
            )
        for entry in entries(spec, records(spec, history).iterator(chunk_size=2000), names):
            if since is not None and entry.when < since:
                continue
            yield history_row(entry)


def history_row(entry: TrailEntry) -> list[str]:
    when = timezone.localtime(entry.when).isoformat(timespec="seconds")
    return [
        when,
        neutralise(entry.who),
        entry.model,
        str(entry.object_id),
        neutralise(entry.object),
        neutralise(entry.po_number),
        entry.action_label,  # a word: a lone "+" or "-" is a formula start
        neutralise(entry.changes_text()),
        neutralise(entry.reason),
    ]
