"""The order tally's readers (orders.order_tally): the order list's and the dashboard's counts
read from it equal the counts of the orders and alerts themselves, for every filter it
answers, and the pages fall back to counting the orders for what it cannot answer."""

from __future__ import annotations

from io import StringIO
from itertools import product
from typing import Any

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import dashboard, order_tally
from orders.dashboard import Selection
from orders.models import PurchaseOrder, SlipAlert, Vendor, open_alert_q
from orders.roles import Role
from tests.factories import PurchaseOrderFactory, UserFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:orders_purchaseorder_changelist")


def _counts_orders(queries: CaptureQueriesContext) -> bool:
    """Whether any of the queries counted orders (with or without a subquery)."""
    return any(
        q["sql"].startswith("SELECT COUNT(*)") and '"orders_purchaseorder"' in q["sql"]
        for q in queries.captured_queries
    )


@pytest.fixture
def orders(django_capture_on_commit_callbacks: Any) -> None:
    """The demo data with its alerts, and orders in every other status: one cancelled while
    its alerts were open (a scan resolves them later), one back to draft."""
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", "--as-written", stdout=StringIO())
    alerted = list(
        PurchaseOrder.objects.filter(alerts__status=SlipAlert.Status.OPEN).distinct()[:2]
    )
    for order, status in zip(alerted, ["cancelled", "draft"], strict=True):
        order.status = status
        order.save()
    PurchaseOrderFactory(status=PurchaseOrder.Status.RECEIVED)
    assert order_tally.drift() == (0, 0)


def _live_alerts(orders: Any) -> dict[tuple[str, str], int]:
    found: dict[tuple[str, str], int] = {}
    for code, severity in SlipAlert.objects.filter(open_alert_q(), order__in=orders).values_list(
        "code", "severity"
    ):
        found[(code, severity)] = found.get((code, severity), 0) + 1
    return found


def test_the_dashboards_counts_from_the_tally_are_those_of_the_orders(orders: None) -> None:
    vendors = [None, *Vendor.objects.order_by("pk")]
    buyers = [None, *{order.buyer for order in PurchaseOrder.objects.select_related("buyer")}]
    for vendor, buyer in product(vendors, buyers):
        selection = Selection(vendor=vendor, buyer=buyer)
        live = PurchaseOrder.objects.open()
        live = live.filter(vendor=vendor) if vendor else live
        live = live.filter(buyer=buyer) if buyer else live
        assert dashboard.slipping_order_count(selection) == live.slipping().count()
        tallied = {(c, s): n for c, s, n in dashboard._counted_open_alerts(selection)}
        assert tallied == _live_alerts(live), (vendor, buyer)
    assert dashboard.slipping_order_count(Selection()) > 0
    assert sum(n for *_, n in dashboard._counted_open_alerts(Selection())) > 0


def test_the_order_count_from_the_tally_is_that_of_the_orders(orders: None) -> None:
    statuses = [None, *[[s] for s in PurchaseOrder.Status], PurchaseOrder.OPEN_STATUSES]
    vendor = Vendor.objects.order_by("pk").first()
    for status, slipping, vendor_id in product(statuses, [None, True, False], [None, vendor.pk]):
        live = PurchaseOrder.objects.all()
        live = live.filter(status__in=status) if status else live
        live = live.filter(vendor_id=vendor_id) if vendor_id else live
        if slipping is not None:
            live = live.slipping() if slipping else live.exclude(pk__in=live.slipping())
        count = order_tally.order_count(statuses=status, slipping=slipping, vendor_id=vendor_id)
        assert count == live.count(), (status, slipping, vendor_id)


@pytest.mark.parametrize(
    ("query", "tallied"),
    [
        ("", True),
        ("?o=-3&p=1", True),
        ("?status__exact=confirmed", True),
        ("?slipping=yes", True),
        ("?slipping=no", True),
        ("?status__exact=draft&slipping=yes", True),
        ("?vendor__id__exact={vendor}&slipping=yes", True),
        ("?buyer__id__exact={buyer}", True),
        ("?q=", True),
        ("?q=PO-2023", False),  # a search
        ("?lines__gpu_model__id__exact={gpu}", False),  # a GPU model
        ("?placed_on__year=2023", False),  # a date
        ("?status__exact=confirmed&status__exact=placed", False),  # two values
        ("?_popup=1", False),
    ],
)
def test_the_order_list_counts_from_the_tally_what_it_can(
    client: Any, orders: None, query: str, tallied: bool
) -> None:
    order = PurchaseOrder.objects.select_related("vendor").order_by("pk").first()
    gpu = order.lines.first().gpu_model_id
    url = CHANGELIST + query.format(vendor=order.vendor_id, buyer=order.buyer_id, gpu=gpu)
    client.force_login(
        UserFactory(username="manager", is_staff=True, role=Role.PROCUREMENT_MANAGER)
    )
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url)
    assert response.status_code == 200
    changelist = response.context["cl"]
    assert changelist.result_count == changelist.queryset.count()
    assert changelist.result_count > 0 or "draft" in query
    assert _counts_orders(queries) is not tallied


def test_a_buyer_who_sees_only_their_orders_gets_them_counted(
    client: Any, orders: None, settings: Any
) -> None:
    settings.BUYERS_SEE_ALL_ORDERS = False
    buyer = PurchaseOrder.objects.order_by("pk").first().buyer
    buyer.is_staff = True
    buyer.save()
    client.force_login(buyer)
    with CaptureQueriesContext(connection) as queries:
        response = client.get(CHANGELIST)
    mine = PurchaseOrder.objects.filter(buyer=buyer).count()
    assert response.context["cl"].result_count == mine < PurchaseOrder.objects.count()
    assert _counts_orders(queries)


def test_the_row_checkbox_is_djangos_own(orders: None) -> None:
    order = PurchaseOrder.objects.first()
    order.po_number = 'PO-<b>&"x"'
    model_admin = admin.site._registry[PurchaseOrder]
    assert model_admin.action_checkbox(order) == admin.ModelAdmin.action_checkbox(
        model_admin, order
    )
