"""Price rules: plain functions of one vendor's price history for one GPU model, in one
currency. No ORM here; orders.prices loads the points and records what these find.

Prices in different currencies are never compared: the caller groups points by
(vendor, GPU model, currency) before calling.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

PRICE_RISE = "price_rise"


@dataclass(frozen=True)
class PricePoint:
    id: int
    quoted_on: date
    unit_price: Decimal


@dataclass(frozen=True)
class PriceRise:
    latest: PricePoint
    low: PricePoint
    percent: Decimal  # exact; round only to show it

    @property
    def message(self) -> str:
        return (
            f"Price {self.low.unit_price:,.2f} on {self.low.quoted_on.isoformat()} -> "
            f"{self.latest.unit_price:,.2f} on {self.latest.quoted_on.isoformat()} "
            f"(+{self.percent:.1f}%)."
        )


def latest(points: Sequence[PricePoint]) -> PricePoint | None:
    """The most recent price: the later quote date, then the later record on the same day."""
    return max(points, key=lambda p: (p.quoted_on, p.id), default=None)


def change_percent(old: Decimal, new: Decimal) -> Decimal:
    return (new - old) * 100 / old


def price_change(points: Sequence[PricePoint], *, window_days: int) -> PriceRise | None:
    """The latest price against the lowest one in the `window_days` up to it (the lowest,
    earliest on ties, so the rise is the largest the window shows). None without points."""
    newest = latest(points)
    if newest is None:
        return None
    since = newest.quoted_on - timedelta(days=window_days)
    window = [p for p in points if since <= p.quoted_on <= newest.quoted_on]
    low = min(window, key=lambda p: (p.unit_price, p.quoted_on, p.id))
    return PriceRise(newest, low, change_percent(low.unit_price, newest.unit_price))


def price_rise(
    points: Sequence[PricePoint], *, threshold_percent: Decimal, window_days: int
) -> PriceRise | None:
    """`price_rise` finding: the latest price is at least `threshold_percent` above the lowest
    one within `window_days` before it. Exact decimal arithmetic, so +20.0% against a 20%
    threshold is a finding (the A800 case)."""
    change = price_change(points, window_days=window_days)
    if change is None or change.low.unit_price <= 0:
        return None
    if change.percent >= threshold_percent and change.latest.unit_price > change.low.unit_price:
        return change
    return None
