"""Vendor scorecards: which vendors keep their word, read from a tally of every order's part
(orders.vendor_tally.order_score), so a scorecard costs the same at any number of orders.

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

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db.models import F, FloatField, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Cast, NullIf

from orders import permissions
from orders.db_functions import percentile_of_counts
from orders.models import GpuModel, PriceQuote, Vendor, VendorScoreTally
from orders.prices import price_changes

METRICS = (
    "sc_orders",
    "sc_units",
    "sc_received",
    "sc_on_time",
    "sc_on_time_latest",
    "sc_mean_slip",
    "sc_mean_requotes",
    "sc_open_alerts",
)


def _by_vendor() -> QuerySet[VendorScoreTally]:
    """One row per vendor pk with every summed figure, from the scorecards' tally
    (orders.vendor_tally), whose size does not grow with the number of orders."""
    quoted = Q(quoted=True)
    return (
        VendorScoreTally.objects.order_by()
        .values("vendor_pk")
        .annotate(
            sc_orders=Sum("orders"),
            sc_units=Sum("units"),
            sc_received=Sum("received"),
            sc_on_time=Sum("on_time"),
            sc_on_time_latest=Sum("on_time_latest"),
            sc_mean_slip=Cast(Sum(F("slip_days") * F("orders"), filter=quoted), FloatField())
            / NullIf(Sum("orders", filter=quoted), 0),
            sc_mean_requotes=Cast(Sum("requotes"), FloatField()) / NullIf(Sum("orders"), 0),
            sc_open_alerts=Sum("open_alerts"),
        )
    )


def median_slips(vendor_ids: Iterable[int] | None = None) -> dict[int, float | None]:
    """The median slip of each vendor's quoted orders, from the tally's histogram of slips
    (every vendor with orders, or these). One query."""
    rows = VendorScoreTally.objects.filter(quoted=True, orders__gt=0)
    if vendor_ids is not None:
        rows = rows.filter(vendor_pk__in=list(vendor_ids))
    histograms: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for vendor_pk, slip_days, orders in rows.order_by("vendor_pk", "slip_days").values_list(
        "vendor_pk", "slip_days", "orders"
    ):
        histograms[vendor_pk].append((slip_days, orders))
    return {pk: percentile_of_counts(counts, 0.5) for pk, counts in histograms.items()}


def vendors_with_scorecards() -> QuerySet[Vendor]:
    """Vendors annotated with every summed figure (sortable in the admin): each a subquery
    of the tally's few rows per vendor. The median is not among them (`median_slips`)."""
    grouped = _by_vendor().filter(vendor_pk=OuterRef("pk"))
    return Vendor.objects.annotate(**{name: Subquery(grouped.values(name)[:1]) for name in METRICS})


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
    figures = {row.pop("vendor_pk"): row for row in _by_vendor()}
    medians = median_slips()
    cards = []
    for vendor in Vendor.objects.order_by("name"):
        row = figures.get(vendor.pk, {})
        cards.append(
            Scorecard(
                vendor=vendor,
                orders=row.get("sc_orders") or 0,
                units=row.get("sc_units") or 0,
                received=row.get("sc_received") or 0,
                on_time=row.get("sc_on_time") or 0,
                on_time_latest=row.get("sc_on_time_latest") or 0,
                mean_slip_days=row.get("sc_mean_slip"),
                median_slip_days=medians.get(vendor.pk),
                mean_requotes=row.get("sc_mean_requotes"),
                orders_with_open_alerts=row.get("sc_open_alerts") or 0,
                price_change=changes.get(vendor.pk, ""),
            )
        )
    return cards
