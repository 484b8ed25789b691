"""Derived delivery figures, computed by the database.

Which quotes apply to a line: the order-level quotes (no line) and the line's own quotes.
Of those, the earliest (by quoted_on, then id) is the line's baseline and the latest its
current date, so a line-level quote overrides earlier order-level ones for that line and a
later order-level re-quote applies to every line again.

An order is delivered when its last line is, so its baseline and current delivery dates are
the latest of its lines' (orders without lines fall back to their order-level quotes).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import models
from django.db.models import (
    Case,
    CharField,
    Exists,
    F,
    Func,
    IntegerField,
    OuterRef,
    Q,
    Subquery,
    Value,
    When,
)
from django.db.models.functions import Coalesce, Concat, Greatest, Substr

from orders import permissions
from orders.slips import Code

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models.sql.compiler import SQLCompiler


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


def _quote_model() -> type[models.Model]:
    from orders.models import DeliveryQuote

    return DeliveryQuote


def _line_model() -> type[models.Model]:
    from orders.models import OrderLine

    return OrderLine


def _open_alerts() -> models.QuerySet:
    """SlipAlert.objects.filter(open_alert_q()): what every page calls open alerts."""
    from orders.models.alerts import SlipAlert, open_alert_q

    return SlipAlert.objects.filter(open_alert_q())


def _quote_date(applicable: Q, *, latest: bool) -> Subquery:
    order = ("-quoted_on", "-id") if latest else ("quoted_on", "id")
    quotes = _quote_model().objects.filter(applicable).order_by(*order).values("delivery_date")
    return Subquery(quotes[:1], output_field=models.DateField())


def _count(queryset: models.QuerySet) -> Subquery:
    """COUNT(*) of a correlated queryset as a scalar subquery (0 when empty)."""
    counted = queryset.order_by().annotate(n=Func(F("id"), function="COUNT")).values("n")
    return Subquery(counted, output_field=IntegerField())


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


def _line_quotes(line_ref: str, order_ref: str) -> Q:
    """Quotes that apply to the line at `line_ref` of the order at `order_ref`."""
    return Q(order_id=OuterRef(order_ref)) & (Q(line__isnull=True) | Q(line_id=OuterRef(line_ref)))


def _order_level_quotes(order_ref: str) -> Q:
    return Q(order_id=OuterRef(order_ref), line__isnull=True)


def _latest_line_date(*, latest_quote: bool) -> Subquery:
    """The latest, over the order's lines, of each line's baseline or current date."""
    lines = (
        _line_model()
        .objects.filter(order_id=OuterRef("pk"))
        .annotate(d=_quote_date(_line_quotes("pk", "order_id"), latest=latest_quote))
        .order_by(F("d").desc(nulls_last=True))
        .values("d")
    )
    return Subquery(lines[:1], output_field=models.DateField())


class PurchaseOrderQuerySet(models.QuerySet):
    def own_q(self, user: Any) -> Q:
        """The orders `user` buys or watches, as a filter on the order's own columns (an
        EXISTS for the watchers, so no join can repeat an order)."""
        from orders.models import PurchaseOrder

        watching = PurchaseOrder.watchers.through.objects.filter(
            purchaseorder_id=OuterRef("pk"), user_id=user.pk
        )
        return Q(buyer_id=user.pk) | Exists(watching)

    def visible_to(self, user: Any) -> PurchaseOrderQuerySet:
        """The orders `user` may see (orders.permissions.view_scope)."""
        return permissions.scoped(self, user, path="")

    def editable_by(self, user: Any) -> PurchaseOrderQuerySet:
        """The orders `user` may change (orders.permissions.change_scope)."""
        return permissions.scoped(self, user, path="", change=True)

    def open(self) -> PurchaseOrderQuerySet:
        from orders.models import PurchaseOrder

        return self.filter(status__in=PurchaseOrder.OPEN_STATUSES)

    def with_lead_times(self) -> PurchaseOrderQuerySet:
        """Annotate baseline/current delivery date, lead days, slip days and re-quote count."""
        quotes = _quote_model().objects.filter(order_id=OuterRef("pk"))
        return self.annotate(
            baseline_delivery_date=Coalesce(
                _latest_line_date(latest_quote=False),
                _quote_date(_order_level_quotes("pk"), latest=False),
                output_field=models.DateField(),
            ),
            current_delivery_date=Coalesce(
                _latest_line_date(latest_quote=True),
                _quote_date(_order_level_quotes("pk"), latest=True),
                output_field=models.DateField(),
            ),
            baseline_lead_days=DaysBetween(F("baseline_delivery_date"), F("placed_on")),
            current_lead_days=DaysBetween(F("current_delivery_date"), F("placed_on")),
            slip_days=DaysBetween(F("current_delivery_date"), F("baseline_delivery_date")),
            requote_count=Greatest(_count(quotes) - 1, 0),
        )

    def slipping(self) -> PurchaseOrderQuerySet:
        """Orders whose current quoted date is later than the first one."""
        return self.with_lead_times().filter(slip_days__gt=0)

    def with_gpu_model(self, gpu_model_id: int) -> PurchaseOrderQuerySet:
        from orders.models import OrderLine

        return self.filter(
            Exists(OrderLine.objects.filter(order_id=OuterRef("pk"), gpu_model_id=gpu_model_id))
        )


class OrderLineQuerySet(models.QuerySet):
    def with_lead_times(self) -> OrderLineQuerySet:
        """Per line: baseline/current delivery date, lead days, slip and re-quote count."""
        applicable = _line_quotes("pk", "order_id")
        quotes = _quote_model().objects.filter(applicable)
        return self.annotate(
            baseline_delivery_date=_quote_date(applicable, latest=False),
            current_delivery_date=_quote_date(applicable, latest=True),
            baseline_lead_days=DaysBetween(F("baseline_delivery_date"), F("order__placed_on")),
            current_lead_days=DaysBetween(F("current_delivery_date"), F("order__placed_on")),
            slip_days=DaysBetween(F("current_delivery_date"), F("baseline_delivery_date")),
            requote_count=Greatest(_count(quotes) - 1, 0),
        )

    def with_open_alerts(self) -> OrderLineQuerySet:
        """Annotate `open_alerts`: the order's unacknowledged slip alert codes, sorted,
        ';'-separated, '' when none."""
        return self.annotate(open_alerts=_open_alert_codes("order_id"))


class DeliveryQuoteQuerySet(models.QuerySet):
    def order_level(self) -> DeliveryQuoteQuerySet:
        return self.filter(line__isnull=True)
