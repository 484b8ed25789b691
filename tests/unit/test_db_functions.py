"""Percentile and Median aggregates: the same figures on SQLite (a registered Python aggregate)
and PostgreSQL (percentile_cont), checked against values worked out by hand."""

from __future__ import annotations

from typing import Any

import pytest
from django.db.models import Count, Q

from orders.db_functions import Median, Percentile, percentile_cont
from orders.models import OrderLine
from tests.factories import GpuModelFactory, OrderLineFactory, PurchaseOrderFactory

# Sorted 1, 2, 3, 4, 10: the position of fraction f is f * 4, interpolated between neighbours.
QUANTITIES = [4, 1, 10, 3, 2]


@pytest.mark.parametrize(
    ("fraction", "expected"),
    [(0.0, 1.0), (0.25, 2.0), (0.5, 3.0), (0.6, 3.4), (0.9, 7.6), (1.0, 10.0)],
)
def test_percentile_cont_interpolates_like_postgresql(fraction: float, expected: float) -> None:
    assert percentile_cont(QUANTITIES, fraction) == pytest.approx(expected)


def test_percentile_cont_of_nothing_is_none() -> None:
    assert percentile_cont([], 0.9) is None
    assert percentile_cont([7], 0.9) == 7


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_a_fraction_outside_0_to_1_is_refused(fraction: float) -> None:
    with pytest.raises(ValueError, match="between 0 and 1"):
        Percentile("quantity", fraction)


def _lines(quantities: list[int], **order: Any) -> None:
    purchase = PurchaseOrderFactory(**order)
    for i, quantity in enumerate(quantities):
        OrderLineFactory(order=purchase, quantity=quantity, gpu_model=GpuModelFactory(name=f"G{i}"))


@pytest.mark.django_db
def test_percentiles_in_one_grouped_query(django_assert_num_queries: Any) -> None:
    _lines(QUANTITIES, po_number="PO-A")
    _lines([5, 6], po_number="PO-B")
    with django_assert_num_queries(1):
        rows = list(
            OrderLine.objects.values("order__po_number")
            .annotate(
                n=Count("pk"),
                median=Median("quantity"),
                p90=Percentile("quantity", 0.9),
                p10=Percentile("quantity", 0.1),
            )
            .order_by("order__po_number")
        )
    assert [(r["order__po_number"], r["n"]) for r in rows] == [("PO-A", 5), ("PO-B", 2)]
    a, b = rows
    assert (a["median"], a["p90"], a["p10"]) == pytest.approx((3.0, 7.6, 1.4))
    assert (b["median"], b["p90"], b["p10"]) == pytest.approx((5.5, 5.9, 5.1))


@pytest.mark.django_db
def test_percentile_ignores_nulls_and_is_null_for_no_rows() -> None:
    assert OrderLine.objects.aggregate(p=Percentile("quantity", 0.9))["p"] is None
    _lines([2, 4])
    figures = OrderLine.objects.aggregate(p=Percentile("quantity", 0.5), m=Median("quantity"))
    assert figures == {"p": 3.0, "m": 3.0}


@pytest.mark.django_db
def test_percentile_with_a_filter() -> None:
    _lines([1, 2, 3, 100])
    figures = OrderLine.objects.aggregate(p=Percentile("quantity", 1.0, filter=Q(quantity__lt=100)))
    assert figures["p"] == 3.0
