"""Budget exposure: what open orders commit, and what the same GPUs would cost at today's
market price. Selectors only; every figure is per currency, and crosses into the reporting
currency only through an ExchangeRate valid on the day.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Literal

from django.conf import settings
from django.db.models import (
    Count,
    DecimalField,
    ExpressionWrapper,
    F,
    OuterRef,
    Q,
    QuerySet,
    Subquery,
    Sum,
)

from orders.dates import today as local_today
from orders.models import ExchangeRate, OrderLine, PriceQuote, PurchaseOrder

MONEY = DecimalField(max_digits=20, decimal_places=2)
Grouping = Literal["gpu_model", "vendor", "buyer"]
GROUP_KEYS: dict[Grouping, str] = {
    "gpu_model": "gpu_model__name",
    "vendor": "order__vendor__name",
    "buyer": "order__buyer__email",
}


def open_lines_priced(prices: QuerySet[PriceQuote] | None = None) -> QuerySet[OrderLine]:
    """Open order lines with committed cost (quantity x ordered unit price), the latest market
    price of that GPU model in the order's currency (any vendor) among `prices` (every price
    when None; for a page, those its user may see: orders.permissions.visible_prices), the
    replacement cost at it, and the exposure (replacement - committed; empty without a market
    price)."""
    latest_price = (
        (PriceQuote.objects.all() if prices is None else prices)
        .filter(gpu_model_id=OuterRef("gpu_model_id"), currency=OuterRef("order__currency"))
        .order_by("-quoted_on", "-id")
        .values("unit_price")[:1]
    )
    return (
        OrderLine.objects.filter(order__status__in=PurchaseOrder.OPEN_STATUSES)
        .annotate(
            currency=F("order__currency"),
            market_price=Subquery(latest_price, output_field=MONEY),
        )
        .annotate(
            committed=ExpressionWrapper(F("quantity") * F("unit_price"), output_field=MONEY),
            replacement=ExpressionWrapper(F("quantity") * F("market_price"), output_field=MONEY),
        )
        .annotate(exposure=ExpressionWrapper(F("replacement") - F("committed"), output_field=MONEY))
    )


@dataclass(frozen=True)
class ExposureTotal:
    key: str
    currency: str
    lines: int
    units: int
    committed: Decimal
    replacement: Decimal | None  # None when no line of the group has a market price
    exposure: Decimal | None
    unpriced_lines: int
    rate: Decimal | None = None  # to the reporting currency, when one is known

    def converted(self, amount: Decimal | None) -> Decimal | None:
        if amount is None or self.rate is None:
            return None
        return (amount * self.rate).quantize(Decimal("0.01"))

    @property
    def committed_converted(self) -> Decimal | None:
        return self.converted(self.committed)

    @property
    def exposure_converted(self) -> Decimal | None:
        return self.converted(self.exposure)


@dataclass
class ExposureReport:
    grouping: Grouping
    reporting_currency: str
    rows: list[ExposureTotal] = field(default_factory=list)
    missing_rates: list[str] = field(default_factory=list)

    def grand_total(self, attribute: str) -> Decimal | None:
        """The total in the reporting currency, or None when a currency has no rate (mixed
        currencies are never added as they are)."""
        if self.missing_rates:
            return None
        return sum(
            (row.converted(getattr(row, attribute)) or Decimal(0) for row in self.rows),
            Decimal(0),
        )

    @property
    def total_committed(self) -> Decimal | None:
        return self.grand_total("committed")

    @property
    def total_exposure(self) -> Decimal | None:
        return self.grand_total("exposure")


def rates_to(currency: str, *, on: date) -> dict[str, Decimal]:
    """The rate from each currency into `currency` valid on `on` (latest valid_on <= on);
    1 for the currency itself. One query."""
    rates = {currency: Decimal(1)}
    for from_currency, rate in (
        ExchangeRate.objects.filter(to_currency=currency, valid_on__lte=on)
        .order_by("currency", "-valid_on")
        .values_list("currency", "rate")
    ):
        rates.setdefault(from_currency, rate)
    return rates


def exposure_totals(
    grouping: Grouping, *, on: date | None = None, lines: QuerySet[OrderLine] | None = None
) -> ExposureReport:
    """Totals of open lines per group and currency. Two queries whatever the data size.

    `lines`: open_lines_priced(), narrowed by the caller (the admin page: to the orders the
    user may see); every open line when None."""
    key = GROUP_KEYS[grouping]
    reporting = settings.REPORTING_CURRENCY
    rates = rates_to(reporting, on=on or local_today())
    report = ExposureReport(grouping, reporting)
    rows = (
        (open_lines_priced() if lines is None else lines)
        .values(key, "currency")
        .annotate(
            n_lines=Count("pk"),
            units=Sum("quantity"),
            total_committed=Sum("committed"),
            total_replacement=Sum("replacement"),
            total_exposure=Sum("exposure"),
            unpriced=Count("pk", filter=Q(market_price__isnull=True)),
        )
        .order_by(key, "currency")
    )
    for row in rows:
        currency = row["currency"]
        if currency not in rates and currency not in report.missing_rates:
            report.missing_rates.append(currency)
        report.rows.append(
            ExposureTotal(
                key=row[key] or "",
                currency=currency,
                lines=row["n_lines"],
                units=row["units"],
                committed=row["total_committed"],
                replacement=row["total_replacement"],
                exposure=row["total_exposure"],
                unpriced_lines=row["unpriced"],
                rate=rates.get(currency),
            )
        )
    return report
