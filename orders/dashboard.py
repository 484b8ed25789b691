"""Selectors for the buyer dashboard pages: read-only, set-based, a fixed number of queries
whatever the number of orders, quotes or prices (tests/unit/test_dashboard.py counts them).

The figures are the ones the rest of the tracker uses: lead times and slips stored on
orders (orders.schedules), price changes from `orders.price_rules`, scorecards
from `orders.scorecards`. This module only selects and shapes them for pages and charts.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any, Literal

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db.models import Count, F, Prefetch, QuerySet, Sum

from orders import order_tally, permissions
from orders.dates import as_date
from orders.db_functions import DaysBetween, percentile_of_counts
from orders.models import (
    Delivery,
    DeliveryQuote,
    GpuModel,
    LeadTimeTally,
    OrderLine,
    PriceAlert,
    PriceQuote,
    PurchaseOrder,
    SlipAlert,
    Vendor,
    open_alert_q,
)
from orders.permissions import Scope
from orders.price_rules import PricePoint, PriceRise, price_change
from orders.slips import EVERY_QUOTE, RANK, SEVERITY, Severity

# --- Dashboard: open alerts and slipping orders ------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """Which open orders a dashboard shows (and its CSV exports): None means any.

    `viewer` is whose dashboard it is: only the orders they may see (orders.permissions);
    None (tests, code run by an operator) means every order."""

    vendor: Vendor | None = None
    gpu_model: GpuModel | None = None
    buyer: AbstractBaseUser | None = None
    viewer: AbstractBaseUser | None = None


def open_orders(selection: Selection) -> QuerySet[PurchaseOrder]:
    """Open orders (placed, confirmed, partially received) matching the selection."""
    orders = PurchaseOrder.objects.open()
    if selection.viewer is not None:
        orders = orders.visible_to(selection.viewer)
    if selection.vendor is not None:
        orders = orders.filter(vendor=selection.vendor)
    if selection.gpu_model is not None:
        orders = orders.with_gpu_model(selection.gpu_model.pk)
    if selection.buyer is not None:
        orders = orders.filter(buyer=selection.buyer)
    return orders


def slipping_orders(selection: Selection) -> QuerySet[PurchaseOrder]:
    """Open orders of the selection whose current quoted date is later than the first, worst
    first: the largest slip, then the earliest need-by date, then PO number. This queryset is
    what the dashboard lists and what its CSV export writes."""
    return (
        open_orders(selection)
        .slipping()
        .order_by(F("slip_days").desc(), F("need_by").asc(nulls_last=True), "po_number")
    )


def slipping_orders_for_display(selection: Selection) -> QuerySet[PurchaseOrder]:
    """`slipping_orders` with what a table row shows: vendor, buyer, lines with GPU models
    and the open alert codes (three queries in all)."""
    open_alerts = SlipAlert.objects.filter(open_alert_q()).order_by("code")
    return (
        slipping_orders(selection)
        .select_related("vendor", "buyer")
        .prefetch_related(
            Prefetch("lines", OrderLine.objects.select_related("gpu_model").order_by("id")),
            Prefetch("alerts", open_alerts, to_attr="open_alert_list"),
        )
    )


@dataclass(frozen=True)
class AlertCount:
    code: str
    severity: str
    alerts: int
    orders: int

    @property
    def label(self) -> str:
        return self.code.replace("_", " ")


@dataclass(frozen=True)
class AlertSummary:
    rows: list[AlertCount]
    price_alerts: int

    def total(self, severity: str) -> int:
        return sum(row.alerts for row in self.rows if row.severity == severity)

    @property
    def critical(self) -> int:
        return self.total(Severity.CRITICAL)

    @property
    def warning(self) -> int:
        return self.total(Severity.WARNING)


def _tallied(selection: Selection) -> bool:
    """Whether the selection's counts can be read from the order tally (orders.order_tally):
    when the viewer sees every order and no GPU model is chosen (an order's lines may have
    several). Its counters cover every order whatever their number; other viewers' counts
    cover their own orders only, counted from the orders themselves."""
    return selection.gpu_model is None and (
        selection.viewer is None or permissions.view_scope(selection.viewer) is Scope.ALL
    )


def _tally_filters(selection: Selection) -> dict[str, Any]:
    return {
        "vendor_id": selection.vendor.pk if selection.vendor is not None else None,
        "buyer_id": selection.buyer.pk if selection.buyer is not None else None,
        "statuses": PurchaseOrder.OPEN_STATUSES,
    }


def slipping_order_count(selection: Selection) -> int:
    """How many orders `slipping_orders` lists, from the order tally where it can be
    (`_tallied`). One query."""
    if _tallied(selection):
        return order_tally.order_count(slipping=True, **_tally_filters(selection))
    return slipping_orders(selection).count()


def _counted_open_alerts(selection: Selection) -> Iterable[tuple[str, str, int]]:
    """(code, severity, alerts) of the open alerts on the selection's open orders. One query:
    of the order tally where it can be (`_tallied`), of the alerts otherwise."""
    if _tallied(selection):
        return order_tally.open_alert_counts(**_tally_filters(selection))
    return (
        SlipAlert.objects.filter(
            open_alert_q(), order__in=open_orders(selection).order_by().values("pk")
        )
        .values_list("code", "severity")
        # An order holds at most one open alert per rule (the slipalert_one_open_per_order
        # _code constraint), so within a rule its alerts are its orders: no DISTINCT to sort.
        .annotate(alerts=Count("*"))
        .order_by()
    )


def open_alert_counts(selection: Selection) -> AlertSummary:
    """Unacknowledged slip alerts on the selection's open orders, per rule code (every code,
    worst first, zeros included) with its severity; and unacknowledged price alerts for the
    selection's vendor and GPU model (prices have no buyer), of those the viewer may see
    (orders.permissions.visible_price_alerts). Two queries."""
    counted = {(code, severity): n for code, severity, n in _counted_open_alerts(selection)}
    rows = []
    for code in sorted(SEVERITY, key=RANK.__getitem__):
        n = counted.pop((code.value, SEVERITY[code].value), 0)
        rows.append(AlertCount(code.value, SEVERITY[code].value, n, n))
    # A severity an alert was recorded with that the rules no longer give: still shown.
    rows += [AlertCount(c, s, n, n) for (c, s), n in counted.items()]
    prices = PriceAlert.objects.filter(acknowledged_at__isnull=True)
    if selection.viewer is not None:
        prices = permissions.visible_price_alerts(prices, selection.viewer)
    if selection.vendor is not None:
        prices = prices.filter(vendor=selection.vendor)
    if selection.gpu_model is not None:
        prices = prices.filter(gpu_model=selection.gpu_model)
    return AlertSummary(rows, prices.count())


# --- Lead-time trend ---------------------------------------------------------------------------

LeadTimeGrouping = Literal["all", "gpu_model", "vendor"]
PERCENTILE = 0.9


@dataclass(frozen=True)
class LeadTimeMonth:
    month: date
    median_days: float
    p90_days: float
    quotes: int


@dataclass
class LeadTimeSeries:
    label: str
    months: list[LeadTimeMonth] = field(default_factory=list)


def _lead_time_rows(grouping: LeadTimeGrouping) -> QuerySet[Any]:
    """How many quotes had each lead time, per series key (none, vendor pk or GPU model pk)
    and month, in that order: read from the lead-time tally, whose size is months x vendors
    x GPU models x distinct lead times, whatever the number of quotes. One query."""
    tally = LeadTimeTally.objects.exclude(quotes=0)
    if grouping == "gpu_model":
        tally = tally.exclude(gpu_model_pk=EVERY_QUOTE)
    else:
        tally = tally.filter(gpu_model_pk=EVERY_QUOTE)
    key = {"all": None, "vendor": "vendor_pk", "gpu_model": "gpu_model_pk"}[grouping]
    keys = [name for name in (key, "month", "lead_days") if name]
    return tally.values_list(*keys).annotate(n=Sum("quotes")).order_by(*keys)


def _labels(grouping: LeadTimeGrouping) -> dict[int, str]:
    if grouping == "vendor":
        return dict(Vendor.objects.values_list("pk", "name"))
    if grouping == "gpu_model":
        return dict(GpuModel.objects.values_list("pk", "name"))
    return {EVERY_QUOTE: "All quotes"}


def lead_time_trend(grouping: LeadTimeGrouping) -> list[LeadTimeSeries]:
    """Monthly median and 90th-percentile quoted lead time (orders.slips.lead_time_counts),
    one series per GPU model or vendor (or one for all quotes), series by name, months in
    order. Per GPU model, a quote counts for every GPU model it applies to. Two queries."""
    labels = _labels(grouping)
    histograms: dict[tuple[str, date], list[tuple[int, int]]] = defaultdict(list)
    for row in _lead_time_rows(grouping):
        *key, month, lead_days, n = row if grouping != "all" else (EVERY_QUOTE, *row)
        label = labels.get(key[0])
        if label is not None:
            histograms[(label, as_date(month))].append((lead_days, n))
    series: dict[str, LeadTimeSeries] = {}
    for (label, month), counts in histograms.items():
        series.setdefault(label, LeadTimeSeries(label)).months.append(
            LeadTimeMonth(
                month=month,
                median_days=percentile_of_counts(counts, 0.5),
                p90_days=percentile_of_counts(counts, PERCENTILE),
                quotes=sum(n for _, n in counts),
            )
        )
    for one in series.values():
        one.months.sort(key=lambda m: m.month)
    return sorted(series.values(), key=lambda s: s.label)


def months_of(series: Iterable[LeadTimeSeries]) -> list[date]:
    """Every month any series has, in order: a chart's shared x axis."""
    return sorted({m.month for s in series for m in s.months})


# --- Price trend -------------------------------------------------------------------------------


@dataclass
class PriceSeries:
    """One vendor's prices for one GPU model in one currency, oldest first, and the change of
    its latest price over the lowest in the alert window before it."""

    gpu_model: str
    vendor: str
    currency: str
    points: list[PricePoint] = field(default_factory=list)
    change: PriceRise | None = None

    @property
    def label(self) -> str:
        return f"{self.vendor} ({self.currency})"

    @property
    def change_percent(self) -> Decimal | None:
        return None if self.change is None else self.change.percent

    @property
    def change_label(self) -> str:
        return "" if self.change is None else f"{self.change.percent:+.1f}%"


@dataclass
class PriceChart:
    gpu_model: str
    series: list[PriceSeries] = field(default_factory=list)


def price_trend(
    *, window_days: int | None = None, viewer: AbstractBaseUser | None = None
) -> list[PriceChart]:
    """Every price history of the prices `viewer` may see (orders.permissions.visible_prices;
    every price when None), one chart per GPU model with a series per vendor and currency
    (currencies are never mixed in one series), each with its window change. One query."""
    window = settings.PRICE_RISE_WINDOW_DAYS if window_days is None else window_days
    prices = PriceQuote.objects.all()
    if viewer is not None:
        prices = permissions.visible_prices(prices, viewer)
    histories: dict[tuple[str, str, str], PriceSeries] = {}
    fields = ("gpu_model__name", "vendor__name", "currency", "quoted_on")
    for pk, gpu_model, vendor, currency, quoted_on, unit_price in (
        prices.order_by(*fields, "id")
        .values_list("pk", *fields, "unit_price")
        .iterator(chunk_size=5000)
    ):
        key = (gpu_model, vendor, currency)
        if key not in histories:
            histories[key] = PriceSeries(gpu_model, vendor, currency)
        histories[key].points.append(PricePoint(pk, quoted_on, unit_price))
    charts: dict[str, PriceChart] = {}
    for series in histories.values():
        series.change = price_change(series.points, window_days=window)
        charts.setdefault(series.gpu_model, PriceChart(series.gpu_model)).series.append(series)
    return list(charts.values())


# --- Order timeline ----------------------------------------------------------------------------


@dataclass
class OrderTimeline:
    order: PurchaseOrder
    lines: list[OrderLine]
    quotes: list[DeliveryQuote]
    deliveries: list[Delivery]
    alerts: list[SlipAlert]

    def quote_series(self) -> dict[str, list[DeliveryQuote]]:
        """Quotes by what they apply to: the whole order, or one line's GPU model."""
        series: dict[str, list[DeliveryQuote]] = defaultdict(list)
        for quote in self.quotes:
            label = "Whole order" if quote.line is None else f"{quote.line.gpu_model} line"
            series[label].append(quote)
        return dict(series)


def order_timeline(
    order_id: int, *, viewer: AbstractBaseUser | None = None
) -> OrderTimeline | None:
    """One order with its lead-time figures, lines, every quote, receipts and slip alerts
    (acknowledged or not). Five queries; None when there is no such order, or `viewer` may
    not see it (None: anyone's order)."""
    orders = PurchaseOrder.objects.all()
    if viewer is not None:
        orders = orders.visible_to(viewer)
    order = orders.select_related("vendor", "buyer").filter(pk=order_id).first()
    if order is None:
        return None
    return OrderTimeline(
        order=order,
        lines=list(
            OrderLine.objects.filter(order=order).select_related("gpu_model").order_by("id")
        ),
        quotes=list(
            DeliveryQuote.objects.filter(order=order)
            .select_related("line__gpu_model")
            .annotate(lead_days=DaysBetween(F("delivery_date"), F("order__placed_on")))
            .order_by("quoted_on", "id")
        ),
        deliveries=list(
            Delivery.objects.filter(order=order)
            .select_related("line__gpu_model")
            .order_by("delivered_on", "id")
        ),
        alerts=list(
            SlipAlert.objects.filter(order=order)
            .select_related("quote")
            .order_by("detected_at", "id")
        ),
    )
