"""The price_rise rule at, below and above its threshold, with the market's figures."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest

from orders.price_rules import PricePoint, price_change, price_rise

D = date.fromisoformat
P = Decimal


def _points(*pairs: tuple[str, str]) -> list[PricePoint]:
    return [PricePoint(i, D(day), P(price)) for i, (day, price) in enumerate(pairs, 1)]


def _rise(points: list[PricePoint], threshold: str = "20", window: int = 180) -> Decimal | None:
    found = price_rise(points, threshold_percent=P(threshold), window_days=window)
    return None if found is None else found.percent


@pytest.mark.parametrize(
    ("history", "expected"),
    [
        # A100: +37.5% in five months (December -> mid-April).
        ((("2022-11-15", "10000"), ("2023-01-15", "11500"), ("2023-04-14", "13750")), "37.5"),
        # A800: +20.0% over the same months: exactly at the threshold, so flagged.
        ((("2022-11-15", "12000"), ("2023-04-14", "14400")), "20"),
        # Just below the threshold.
        ((("2022-11-15", "12000"), ("2023-04-14", "14399.99")), None),
        # Just above.
        ((("2022-11-15", "12000"), ("2023-04-14", "14400.01")), "20.00008333333333333333333333"),
        # A price that fell back is judged by the latest price, not the peak.
        ((("2022-11-15", "10000"), ("2023-02-01", "14000"), ("2023-04-14", "11000")), None),
        # One price: nothing to compare.
        ((("2023-04-14", "40000"),), None),
        # Flat.
        ((("2022-11-15", "10000"), ("2023-04-14", "10000")), None),
    ],
)
def test_price_rise_thresholds(history: tuple, expected: str | None) -> None:
    result = _rise(_points(*history))
    assert result == (None if expected is None else P(expected))


def test_the_window_is_counted_back_from_the_latest_price() -> None:
    low_day = D("2023-04-14") - timedelta(days=180)
    inside = _points((low_day.isoformat(), "10000"), ("2023-04-14", "12000"))
    outside = _points(((low_day - timedelta(days=1)).isoformat(), "10000"), ("2023-04-14", "12000"))
    assert _rise(inside) == P("20")
    assert _rise(outside) is None  # the low fell out of the window; the latest is its own low


def test_same_day_quotes_take_the_later_record_as_latest() -> None:
    points = _points(("2022-12-01", "10000"), ("2023-04-14", "13000"), ("2023-04-14", "11000"))
    assert price_change(points, window_days=180).latest.id == 3
    assert _rise(points) is None  # 11,000 is +10%


def test_message_names_both_prices_and_the_change() -> None:
    found = price_rise(
        _points(("2022-11-15", "10000"), ("2023-04-14", "13750")),
        threshold_percent=P("20"),
        window_days=180,
    )
    assert found is not None
    assert found.message == ("Price 10,000.00 on 2022-11-15 -> 13,750.00 on 2023-04-14 (+37.5%).")


def test_no_points_no_change() -> None:
    assert price_change([], window_days=180) is None
