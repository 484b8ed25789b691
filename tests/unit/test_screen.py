"""What every screen shares: ISO dates (the admin too), counted nouns in the right number,
people by their full name, an icon, and the app's own error pages."""

from __future__ import annotations

import re
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.staticfiles import finders
from django.template.loader import render_to_string
from django.test import RequestFactory
from django.views.defaults import server_error

from orders.demo import load_demo
from orders.models import PurchaseOrder
from orders.people import person_name
from orders.roles import Role
from tests.factories import UserFactory

D = date.fromisoformat


@pytest.fixture
def demo_2026(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        load_demo(as_of=D("2026-12-04"))


def _cell(html: str, field: str, po_number: str) -> str:
    row = re.search(rf"<tr>(?:(?!</tr>).)*{po_number}(?:(?!</tr>).)*</tr>", html, re.S)
    assert row, f"no row for {po_number}"
    cell = re.search(rf'<td class="field-{field}[^"]*">(.*?)</td>', row.group(0), re.S)
    assert cell, f"no {field} cell"
    return cell.group(1).strip()


@pytest.mark.django_db
def test_the_admin_shows_iso_dates_and_full_names(
    admin_client_logged_in: Any, demo_2026: None
) -> None:
    html = admin_client_logged_in.get("/admin/orders/purchaseorder/").content.decode()
    assert _cell(html, "current_date", "PO-2026-0412") == "2026-12-15"
    assert _cell(html, "buyer_name", "PO-2026-0412") == "Alice Moreau"
    assert "Dec. 15, 2026" not in html
    # The change page: the date input holds an ISO date; a timestamp reads the same way.
    order = PurchaseOrder.objects.get(po_number="PO-2026-0412")
    html = admin_client_logged_in.get(f"/admin/orders/purchaseorder/{order.pk}/change/")
    html = html.content.decode()
    assert 'value="2026-04-14"' in html
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d", html)
    # The alerts' drill-down by day.
    html = admin_client_logged_in.get("/admin/orders/slipalert/").content.decode()
    assert re.search(r'href="\?detected_at__day=\d+[^"]*">\d{4}-\d\d-\d\d<', html)


@pytest.mark.django_db
def test_the_admin_accepts_an_iso_date(admin_client_logged_in: Any, demo_2026: None) -> None:
    order = PurchaseOrder.objects.get(po_number="PO-2026-0510")  # a draft: free to edit
    response = admin_client_logged_in.get(f"/admin/orders/purchaseorder/{order.pk}/change/")
    form = response.context["adminform"].form
    assert form.fields["need_by"].clean("2026-12-31") == D("2026-12-31")


@pytest.mark.django_db
def test_dashboard_names_the_buyer(client: Any, demo_2026: None) -> None:
    user = UserFactory(username="viewer", first_name="Vera", last_name="Nilsen", role=Role.VIEWER)
    client.force_login(user)
    html = client.get("/?buyer=").content.decode()
    assert "Alice Moreau" in html
    assert "Vera Nilsen" in html  # who is logged in, in the header


def test_a_person_is_named_by_full_name_else_user_name() -> None:
    assert person_name(SimpleNamespace(get_full_name=lambda: "Alice Moreau")) == "Alice Moreau"
    nameless = SimpleNamespace(get_full_name=lambda: " ", get_username=lambda: "alice")
    assert person_name(nameless) == "alice"
    assert person_name(None) == "—"


@pytest.mark.parametrize(("slip", "shown"), [(1, "(+1 day)"), (2, "(+2 days)")])
def test_an_email_counts_one_day_as_one(slip: int, shown: str) -> None:
    order = SimpleNamespace(
        po_number="PO-1",
        vendor=SimpleNamespace(name="Northwind Servers"),
        lines=SimpleNamespace(all=list),
        baseline_delivery_date=D("2026-12-03"),
        current_delivery_date=D("2026-12-04"),
        slip_days=slip,
        baseline_lead_days=30,
        current_lead_days=30 + slip,
        need_by=None,
        pk=1,
    )
    block = SimpleNamespace(order=order, sorted_alerts=[])
    for template in ("email/_order_block.txt", "email/_order_block.html"):
        text = render_to_string(template, {"block": block, "site_url": "http://x"})
        assert shown in text, template


@pytest.mark.django_db
def test_the_prices_page_counts_one_day_as_one(client: Any, settings: Any, demo_2026: None) -> None:
    settings.PRICE_RISE_WINDOW_DAYS = 1
    client.force_login(UserFactory(role=Role.VIEWER))
    html = client.get("/prices/").content.decode()
    assert "(1 day)" in html
    assert "1 days" not in html


@pytest.mark.django_db
def test_favicon(client: Any, admin_client_logged_in: Any) -> None:
    assert finders.find("favicon.svg")
    response = client.get("/favicon.ico")
    assert response.status_code == 302
    assert response["Location"] == "/static/favicon.svg"
    icon = '<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">'
    assert icon in client.get("/accounts/login/").content.decode()
    assert icon in admin_client_logged_in.get("/admin/").content.decode()


@pytest.mark.django_db
def test_an_unknown_address_gets_the_apps_404_page(client: Any, settings: Any) -> None:
    settings.DEBUG = False
    response = client.get("/no-such-page/")
    assert response.status_code == 404
    html = response.content.decode()
    assert "Page not found" in html
    assert "GPU Procurement Tracker" in html
    assert 'href="/"' in html  # back to the dashboard


def test_a_server_error_gets_the_apps_500_page() -> None:
    response = server_error(RequestFactory().get("/"))
    assert response.status_code == 500
    html = response.content.decode()
    assert "Something went wrong on our side" in html
    assert "GPU Procurement Tracker" in html
