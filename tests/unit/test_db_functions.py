"""Percentiles of a tally's counts (`percentile_of_counts`): PostgreSQL's percentile_cont, as
if each value were listed as many times as it was counted; checked against values worked out
by hand, against the list-based definition on random histograms, and on PostgreSQL itself."""

from __future__ import annotations

import math
import random
from collections import Counter

import pytest
from django.db import connection

from orders.db_functions import percentile_of_counts
from tests.conftest import ON_POSTGRES

# Sorted 1, 2, 3, 4, 10: the position of fraction f is f * 4, interpolated between neighbours.
QUANTITIES = [4, 1, 10, 3, 2]


def _counts(values: list[int]) -> list[tuple[int, int]]:
    return sorted(Counter(values).items())


def _percentile_cont(values: list[int], fraction: float) -> float | None:
    """The definition, on the listed values."""
    if not values:
        return None
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low, high = math.floor(position), math.ceil(position)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 1.0), (0.25, 2.0), (0.5, 3.0), (0.6, 3.4), (0.9, 7.6), (1.0, 10.0)],
)
def test_percentile_interpolates_like_postgresql(fraction: float, expected: float) -> None:
    assert percentile_of_counts(_counts(QUANTITIES), fraction) == pytest.approx(expected)


def test_repeated_values_count_as_many_times() -> None:
    # 33 once, 100 once and 31 once (the demo's April A100 quotes): median 33, p90 86.6.
    assert percentile_of_counts([(31, 1), (33, 1), (100, 1)], 0.5) == 33
    assert percentile_of_counts([(31, 1), (33, 1), (100, 1)], 0.9) == pytest.approx(86.6)
    # 2 twice and 5 once is 2, 2, 5: median 2, p90 4.4.
    assert percentile_of_counts([(2, 2), (5, 1)], 0.5) == 2
    assert percentile_of_counts([(2, 2), (5, 1)], 0.9) == pytest.approx(4.4)


def test_nothing_counted_is_none() -> None:
    assert percentile_of_counts([], 0.9) is None
    assert percentile_of_counts([(7, 0)], 0.9) is None
    assert percentile_of_counts([(7, 1)], 0.9) == 7


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_fraction_outside_0_to_1_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        percentile_of_counts([(1, 1)], fraction)


def test_equals_the_definition_on_random_histograms() -> None:
    rng = random.Random(20261205)
    for _ in range(2000):
        values = [rng.randint(-30, 300) for _ in range(rng.randint(1, 40))]
        fraction = rng.choice([0.0, 0.5, 0.9, 1.0, rng.random()])
        assert percentile_of_counts(_counts(values), fraction) == _percentile_cont(values, fraction)


@pytest.mark.django_db
@pytest.mark.skipif(not ON_POSTGRES, reason="percentile_cont is PostgreSQL's")
def test_equals_postgresql_percentile_cont() -> None:
    rng = random.Random(5)
    for _ in range(50):
        values = [rng.randint(0, 400) for _ in range(rng.randint(1, 60))]
        fraction = rng.choice([0.5, 0.9, rng.random()])
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT percentile_cont(%s) WITHIN GROUP (ORDER BY v) FROM unnest(%s) AS v",
                [fraction, values],
            )
            (expected,) = cursor.fetchone()
        assert percentile_of_counts(_counts(values), fraction) == pytest.approx(expected)
