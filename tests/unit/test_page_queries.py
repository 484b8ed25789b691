"""The pieces that keep the order list's cost flat at a million orders give the answers of
Django's own: the date drill-down (PurchaseOrderQuerySet.dates), the filters' choices
(orders.db_functions.distinct_values, admin_filters.RelatedWithRowsFilter) and the search
(PurchaseOrderAdmin.get_search_results). On SQLite and PostgreSQL alike."""

from __future__ import annotations

import random
from datetime import date, timedelta
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin import ModelAdmin
from django.db import models
from django.test import RequestFactory

from orders.db_functions import distinct_values
from orders.models import OrderLine, PurchaseOrder
from orders.roles import Role, role_grant
from tests.factories import (
    GpuModelFactory,
    OrderLineFactory,
    PurchaseOrderFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db


def _orders(seed: int, n: int = 40) -> None:
    rng = random.Random(seed)
    vendors = [VendorFactory(name=name) for name in ("Northwind", "Pacific Silicon", "Meridian")]
    buyers = [UserFactory() for _ in range(4)]
    gpus = [GpuModelFactory(name=name) for name in ("A100", "H100", "A10")]
    UserFactory()  # buys nothing
    GpuModelFactory(name="L40S")  # on no line
    for i in range(n):
        order = PurchaseOrderFactory(
            po_number=f"PO-{rng.choice('ABC')}{i:04d}",
            vendor=rng.choice(vendors),
            buyer=rng.choice(buyers[:3]),
            placed_on=date(2021, 1, 1) + timedelta(days=rng.randint(0, 1200)),
        )
        OrderLineFactory(order=order, gpu_model=rng.choice(gpus[:2]))


@pytest.mark.parametrize("seed", range(4))
@pytest.mark.parametrize("kind", ["year", "month", "day"])
def test_the_date_drill_down_finds_the_periods_djangos_dates_finds(seed: int, kind: str) -> None:
    _orders(seed)
    orders = PurchaseOrder.objects.all()
    subsets = [
        orders,
        orders.filter(placed_on__year=2022),
        orders.filter(placed_on__year=2022, placed_on__month=3),
        orders.filter(vendor__name="Northwind"),
        orders.none(),
    ]
    for subset in subsets:
        for order in ("ASC", "DESC"):
            expected = list(models.QuerySet.dates(subset, "placed_on", kind, order))
            assert subset.dates("placed_on", kind, order) == expected


def test_the_date_drill_down_is_two_queries(django_assert_num_queries: Any) -> None:
    _orders(1)
    with django_assert_num_queries(2):
        PurchaseOrder.objects.dates("placed_on", "month")


@pytest.mark.parametrize("seed", range(3))
def test_distinct_values_are_select_distinct(seed: int) -> None:
    _orders(seed)
    for model, column in ((PurchaseOrder, "buyer_id"), (OrderLine, "gpu_model_id")):
        expected = set(model.objects.order_by().values_list(column, flat=True).distinct())
        assert sorted(distinct_values(model, column)) == sorted(expected)
    PurchaseOrder.objects.all().delete()
    assert distinct_values(PurchaseOrder, "buyer_id") == []


def _choices(user: Any, path: str) -> list[Any]:
    request = RequestFactory().get("/")
    request.user = user
    model_admin = admin.site._registry[PurchaseOrder]
    filter_class = dict((f[0], f[1]) for f in model_admin.list_filter if isinstance(f, tuple))[path]
    field = model_admin.model._meta.get_field(path.split("__")[0])
    if "__" in path:
        field = OrderLine._meta.get_field("gpu_model")
    spec = filter_class(field, request, {}, PurchaseOrder, model_admin, field_path=path)
    return sorted(pk for pk, _ in spec.lookup_choices)


@pytest.mark.parametrize("path", ["buyer", "lines__gpu_model"])
def test_the_filters_offer_what_the_visible_orders_refer_to(path: str, settings: Any) -> None:
    """Whoever sees every order: every buyer and GPU model on an order, and nothing else
    (not the user who buys nothing, not the GPU model on no line). A buyer: only those of
    the orders they may see."""
    _orders(7)
    superuser = UserFactory(is_superuser=True, is_staff=True)
    column = {"buyer": "buyer_id", "lines__gpu_model": "lines__gpu_model_id"}[path]
    expected = sorted(set(PurchaseOrder.objects.values_list(column, flat=True)))
    assert _choices(superuser, path) == expected

    buyer = PurchaseOrder.objects.order_by("pk").first().buyer
    role_grant(user=buyer, role=Role.BUYER)
    own = PurchaseOrder.objects.filter(buyer=buyer)
    for buyers_see_all in (False, True):
        settings.BUYERS_SEE_ALL_ORDERS = buyers_see_all
        visible = PurchaseOrder.objects.visible_to(buyer)
        assert _choices(buyer, path) == sorted(set(visible.values_list(column, flat=True)))
    if path == "buyer":  # the scoped choices are fewer: the test tells the two apart
        assert len(expected) > len(set(own.values_list(column, flat=True)))


@pytest.mark.parametrize(
    "term",
    ["PO-A", "a00", "northwind", "silicon po-b", '"Pacific Silicon"', "nothing", "", "  "],
)
def test_the_search_finds_what_search_fields_finds(term: str) -> None:
    _orders(3)
    request = RequestFactory().get("/")
    request.user = UserFactory(is_superuser=True, is_staff=True)
    model_admin = admin.site._registry[PurchaseOrder]
    orders = PurchaseOrder.objects.all()
    found, duplicates = model_admin.get_search_results(request, orders, term)
    expected, _ = ModelAdmin.get_search_results(model_admin, request, orders, term)
    assert not duplicates
    assert sorted(found.values_list("pk", flat=True)) == sorted(
        expected.values_list("pk", flat=True).distinct()
    )
