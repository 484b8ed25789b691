"""Vendor scorecards: which vendors keep their word, computed by aggregate queries.

Definitions (every figure ignores draft orders, which no vendor has seen yet):
- orders, units: orders placed with the vendor and GPUs on them.
- on-time rate: of the orders fully received (status received, with receipts), the share whose
  last receipt came on or before the first quoted date (baseline); "against the latest quote"
  compares with the last quoted date instead.
- slip days: current minus baseline quoted delivery date, per order with quotes (mean, median).
- re-quotes per order: quotes after the first, averaged over orders.
- open-alert share: orders with at least one unacknowledged slip alert.
- price change: the vendor's largest latest-versus-window-low change over its GPU models
  (orders.price_rules), per currency, never mixed; from the prices the viewer may see, so it
  never reads off the price of an order they may not see (orders.permissions).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import (
    Avg,
    Case,
    Count,
    Exists,
    F,
    FloatField,
    Max,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
    When,
)
from django.db.models.functions import Cast

from orders import permissions
from orders.db_functions import Median
from orders.models import (
    Delivery,
    GpuModel,
    OrderLine,
    PriceQuote,
    PurchaseOrder,
    SlipAlert,
    Vendor,
    open_alert_q,
)
from orders.prices import price_changes

METRICS = (
    "sc_orders",
    "sc_units",
    "sc_received",
    "sc_on_time",
    "sc_on_time_latest",
    "sc_mean_slip",
    "sc_median_slip",
    "sc_mean_requotes",
    "sc_open_alerts",
)


def _orders_by_vendor() -> QuerySet[PurchaseOrder]:
    """One row per vendor id with every order-based figure. One grouped query."""
    received_on = (
        Delivery.objects.filter(order_id=OuterRef("pk"))
        .order_by()
        .values("order_id")
        .annotate(last=Max("delivered_on"))
        .values("last")
    )
    open_alert = SlipAlert.objects.filter(open_alert_q(), order_id=OuterRef("pk"))
    received = Q(status=PurchaseOrder.Status.RECEIVED, received_on__isnull=False)
    return (
        PurchaseOrder.objects.exclude(status=PurchaseOrder.Status.DRAFT)
        .annotate(
            # Looked up for received orders only: a probe per order would be most of the cost.
            received_on=Case(
                When(status=PurchaseOrder.Status.RECEIVED, then=Subquery(received_on))
            ),
            has_open_alert=Exists(open_alert),
        )
        .order_by()
        .values("vendor_id")
        .annotate(
            sc_orders=Count("pk"),
            sc_received=Count("pk", filter=received),
            sc_on_time=Count(
                "pk", filter=received & Q(received_on__lte=F("baseline_delivery_date"))
            ),
            sc_on_time_latest=Count(
                "pk", filter=received & Q(received_on__lte=F("current_delivery_date"))
            ),
            sc_mean_slip=Avg(Cast("slip_days", FloatField())),
            sc_median_slip=Median("slip_days"),
            sc_mean_requotes=Avg(Cast("requote_count", FloatField())),
            sc_open_alerts=Count("pk", filter=Q(has_open_alert=True)),
        )
    )


def _units_by_vendor() -> QuerySet[OrderLine]:
    return (
        OrderLine.objects.exclude(order__status=PurchaseOrder.Status.DRAFT)
        .order_by()
        .values("order__vendor_id")
        .annotate(units=Sum("quantity"))
    )


def vendors_with_scorecards() -> QuerySet[Vendor]:
    """Vendors annotated with every order-based figure (sortable in the admin): each is a
    subquery of the one grouped query above, so the list costs one query whatever its size."""
    grouped = _orders_by_vendor().filter(vendor_id=OuterRef("pk"))
    annotations: dict[str, Any] = {
        name: Subquery(grouped.values(name)[:1]) for name in METRICS if name != "sc_units"
    }
    annotations["sc_units"] = Subquery(
        _units_by_vendor().filter(order__vendor_id=OuterRef("pk")).values("units")[:1]
    )
    return Vendor.objects.annotate(**annotations)


@dataclass(frozen=True)
class Scorecard:
    vendor: Vendor
    orders: int
    units: int
    received: int
    on_time: int
    on_time_latest: int
    mean_slip_days: float | None
    median_slip_days: float | None
    mean_requotes: float | None
    orders_with_open_alerts: int
    price_change: str  # e.g. "A100 80GB SXM +37.5% USD"; empty without price history

    @staticmethod
    def _rate(part: int, whole: int) -> float | None:
        return part / whole if whole else None

    @property
    def on_time_rate(self) -> float | None:
        return self._rate(self.on_time, self.received)

    @property
    def on_time_rate_latest(self) -> float | None:
        return self._rate(self.on_time_latest, self.received)

    @property
    def open_alert_share(self) -> float | None:
        return self._rate(self.orders_with_open_alerts, self.orders)


def shown_percent(value: float | None) -> str:
    """A rate as the admin and the dashboard show it ("—" when there is nothing to rate)."""
    return "—" if value is None else f"{value:.0%}"


def shown_number(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


def price_change_by_vendor(
    *, window_days: int | None = None, viewer: Any | None = None
) -> dict[int, str]:
    """The largest price change (latest vs the window's low) of each vendor's GPU models,
    from the prices `viewer` may see (orders.permissions.visible_prices; every price when
    None: the operator's commands)."""
    names = dict(GpuModel.objects.values_list("pk", "name"))
    prices = (
        None if viewer is None else permissions.visible_prices(PriceQuote.objects.all(), viewer)
    )
    best: dict[int, tuple[Decimal, str]] = {}
    for (vendor_id, gpu_model_id, currency), change in price_changes(
        window_days=window_days, prices=prices
    ).items():
        if change is None:
            continue
        label = f"{names[gpu_model_id]} {change.percent:+.1f}% {currency}"
        if vendor_id not in best or change.percent > best[vendor_id][0]:
            best[vendor_id] = (change.percent, label)
    return {vendor_id: label for vendor_id, (_, label) in best.items()}


def scorecards(*, viewer: Any | None = None) -> list[Scorecard]:
    """Every vendor's scorecard, by name, its price change from the prices `viewer` may see
    (every price when None). Five queries whatever the number of orders."""
    changes = price_change_by_vendor(viewer=viewer)
    # The grouped queries once each, joined to the vendors here: as subqueries per vendor
    # (vendors_with_scorecards, which the admin sorts on) each would run once per vendor.
    figures = {row.pop("vendor_id"): row for row in _orders_by_vendor()}
    units = dict(_units_by_vendor().values_list("order__vendor_id", "units"))
    cards = []
    for vendor in Vendor.objects.order_by("name"):
        row = figures.get(vendor.pk, {})
        cards.append(
            Scorecard(
                vendor=vendor,
                orders=row.get("sc_orders") or 0,
                units=units.get(vendor.pk) or 0,
                received=row.get("sc_received") or 0,
                on_time=row.get("sc_on_time") or 0,
                on_time_latest=row.get("sc_on_time_latest") or 0,
                mean_slip_days=row.get("sc_mean_slip"),
                median_slip_days=row.get("sc_median_slip"),
                mean_requotes=row.get("sc_mean_requotes"),
                orders_with_open_alerts=row.get("sc_open_alerts") or 0,
                price_change=changes.get(vendor.pk, ""),
            )
        )
    return cards
