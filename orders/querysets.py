"""Querysets of orders, lines and quotes. The schedule figures (baseline and current delivery
date, lead days, slip, re-quotes) are stored columns (orders.schedules), read like any other."""

from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from django.db import models
from django.db.models import (
    Case,
    CharField,
    Exists,
    Func,
    Max,
    Min,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat, Substr

from orders import permissions
from orders.slips import Code


def _open_alerts() -> models.QuerySet:
    """SlipAlert.objects.filter(open_alert_q()): what every page calls open alerts."""
    from orders.models.alerts import SlipAlert, open_alert_q

    return SlipAlert.objects.filter(open_alert_q())


def _open_alert_codes(order_ref: str) -> Subquery:
    """The order's open alert codes (`open_alert_q`: open and unacknowledged), distinct,
    sorted and ';'-joined ('' when none).

    One MAX(CASE ...) per known code, concatenated in sorted order, rather than STRING_AGG /
    GROUP_CONCAT: SQLite (3.40 here) cannot order inside group_concat, so this is the one
    spelling that is deterministic on both databases. Codes are a closed set (a CHECK
    constraint keeps the table to them), so nothing can be missed.
    """
    parts = [
        Coalesce(
            Func(
                Case(When(code=code, then=Value(f";{code}"))),
                function="MAX",
                output_field=CharField(),
            ),
            Value(""),
            output_field=CharField(),
        )
        for code in sorted(Code)
    ]
    alerts = (
        _open_alerts()
        .filter(order_id=OuterRef(order_ref))
        .order_by()
        # A non-aggregate Func keeps GROUP BY out: one row per outer row, even with no alerts.
        .annotate(codes=Substr(Concat(*parts, output_field=CharField()), 2))
        .values("codes")
    )
    return Subquery(alerts, output_field=CharField())


def _periods(first: date, last: date, kind: str) -> list[tuple[date, date]]:
    """[start, end) of each year, month or day from the one holding `first` to `last`'s."""
    periods = []
    start = {"year": first.replace(month=1, day=1), "month": first.replace(day=1)}.get(kind, first)
    while start <= last:
        if kind == "year":
            end = start.replace(year=start.year + 1)
        elif kind == "month":
            end = (start + timedelta(days=31)).replace(day=1)
        else:
            end = start + timedelta(days=1)
        periods.append((start, end))
        start = end
    return periods


# Beyond this many candidate periods probing costs more than truncating every row.
_MAX_PROBED_PERIODS = 400


class PurchaseOrderQuerySet(models.QuerySet):
    def own_q(self, user: Any) -> Q:
        """The orders `user` buys or watches, as a filter on the order's own columns (an
        EXISTS for the watchers, so no join can repeat an order)."""
        from orders.models import PurchaseOrder

        watching = PurchaseOrder.watchers.through.objects.filter(
            purchaseorder_id=OuterRef("pk"), user_id=user.pk
        )
        return Q(buyer_id=user.pk) | Exists(watching)

    # A list, not a QuerySet: the admin's drill-down only iterates it.
    def dates(  # type: ignore[override]
        self, field_name: str, kind: str, order: str = "ASC"
    ) -> list[date]:
        """The distinct years, months or days (`kind`) of `field_name` among these orders, as
        QuerySet.dates() gives them (the admin's date drill-down asks), in two queries: the
        first and last date, then one EXISTS per period between them, each a range on the
        date's index. Django's own truncates and sorts every row, which at a million orders
        is the slowest part of the order list."""
        field = self.model._meta.get_field(field_name)
        if kind not in {"year", "month", "day"} or field.get_internal_type() != "DateField":
            return list(super().dates(field_name, kind, order))
        bounds = self.aggregate(first=Min(field_name), last=Max(field_name))
        if bounds["first"] is None:
            return []
        periods = _periods(bounds["first"], bounds["last"], kind)
        if len(periods) > _MAX_PROBED_PERIODS:
            return list(super().dates(field_name, kind, order))
        probes = {
            f"p{i}": Exists(self.filter(**{f"{field_name}__gte": a, f"{field_name}__lt": b}))
            for i, (a, b) in enumerate(periods)
        }
        found = self.order_by().annotate(**probes).values(*probes).first()
        if found is None:  # the orders went between the two queries
            return []
        held = [start for i, (start, _) in enumerate(periods) if found[f"p{i}"]]
        return held if order == "ASC" else held[::-1]

    def visible_to(self, user: Any) -> PurchaseOrderQuerySet:
        """The orders `user` may see (orders.permissions.view_scope)."""
        return permissions.scoped(self, user, path="")

    def editable_by(self, user: Any) -> PurchaseOrderQuerySet:
        """The orders `user` may change (orders.permissions.change_scope)."""
        return permissions.scoped(self, user, path="", change=True)

    def open(self) -> PurchaseOrderQuerySet:
        from orders.models import PurchaseOrder

        return self.filter(status__in=PurchaseOrder.OPEN_STATUSES)

    def slipping(self) -> PurchaseOrderQuerySet:
        """Orders whose current quoted date is later than the first (the stored slip):
        orders.slips.is_slipping as a filter."""
        return self.filter(slip_days__gt=0)

    def with_gpu_model(self, gpu_model_id: int) -> PurchaseOrderQuerySet:
        from orders.models import OrderLine

        return self.filter(
            Exists(OrderLine.objects.filter(order_id=OuterRef("pk"), gpu_model_id=gpu_model_id))
        )


class OrderLineQuerySet(models.QuerySet):
    def with_open_alerts(self) -> OrderLineQuerySet:
        """Annotate `open_alerts`: the order's unacknowledged slip alert codes, sorted,
        ';'-separated, '' when none."""
        return self.annotate(open_alerts=_open_alert_codes("order_id"))


class DeliveryQuoteQuerySet(models.QuerySet):
    def order_level(self) -> DeliveryQuoteQuerySet:
        return self.filter(line__isnull=True)
