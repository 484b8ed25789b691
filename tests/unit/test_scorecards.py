"""Vendor scorecards and budget exposure against a small history worked out by hand."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from orders import exposure, schedules, services
from orders.models import ExchangeRate, PurchaseOrder, SlipAlert
from orders.scorecards import scorecards
from tests.factories import (
    NO_ROLE,
    GpuModelFactory,
    OrderLineFactory,
    PriceQuoteFactory,
    PurchaseOrderFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db

D = date.fromisoformat
P = Decimal


def _order(vendor: Any, quantity: int, quotes: list[tuple[str, str]], **kw: Any) -> PurchaseOrder:
    order = PurchaseOrderFactory(vendor=vendor, placed_on=D("2023-03-01"), **kw)
    line = OrderLineFactory(order=order, quantity=quantity, gpu_model=GpuModelFactory())
    for quoted_on, delivery in quotes:
        services.quote_add(
            order=order, quoted_on=D(quoted_on), delivery_date=D(delivery), check=False
        )
    order.line = line
    return order


@pytest.fixture
def history() -> dict[str, Any]:
    dealer = VendorFactory(name="Pacific Silicon Distribution")
    VendorFactory(name="Quiet Vendor")  # no orders: every figure empty
    # Received 2023-04-05: after the first date (04-01), before the latest (04-10). Slip 9.
    late = _order(dealer, 8, [("2023-03-01", "2023-04-01"), ("2023-03-20", "2023-04-10")])
    services.delivery_record(line=late.line, quantity=8, delivered_on=D("2023-04-05"))
    # Received a day early against its only quote. Slip 0.
    early = _order(dealer, 16, [("2023-03-01", "2023-05-01")])
    services.delivery_record(line=early.line, quantity=16, delivered_on=D("2023-04-30"))
    # Still open, re-quoted twice: slip 92 days, one open alert.
    slipping = _order(
        dealer,
        32,
        [("2023-03-01", "2023-05-01"), ("2023-04-01", "2023-06-01"), ("2023-05-01", "2023-08-01")],
    )
    SlipAlert.objects.create(
        order=slipping,
        code="lead_time_multiplied",
        severity="warning",
        quote=slipping.quotes.latest("quoted_on"),
        message="x",
    )
    _order(dealer, 999, [("2023-03-01", "2023-03-02")], status="draft")  # not counted
    a100 = GpuModelFactory()
    PriceQuoteFactory(vendor=dealer, gpu_model=a100, quoted_on=D("2023-01-01"), unit_price=P(10000))
    PriceQuoteFactory(vendor=dealer, gpu_model=a100, quoted_on=D("2023-05-01"), unit_price=P(12500))
    return {"dealer": dealer}


def test_every_scorecard_figure(history: dict[str, Any], django_assert_num_queries: Any) -> None:
    with django_assert_num_queries(5):
        cards = {card.vendor.name: card for card in scorecards()}
    dealer = cards["Pacific Silicon Distribution"]
    assert (dealer.orders, dealer.units, dealer.received) == (3, 56, 2)
    assert (dealer.on_time, dealer.on_time_latest) == (1, 2)
    assert (dealer.on_time_rate, dealer.on_time_rate_latest) == (0.5, 1.0)
    assert dealer.mean_slip_days == pytest.approx((9 + 0 + 92) / 3)
    assert dealer.median_slip_days == 9
    assert dealer.mean_requotes == pytest.approx(1.0)
    assert dealer.open_alert_share == pytest.approx(1 / 3)
    assert dealer.price_change == "A100 80GB SXM +25.0% USD"

    quiet = cards["Quiet Vendor"]
    assert (quiet.orders, quiet.units, quiet.on_time_rate, quiet.median_slip_days) == (
        0,
        0,
        None,
        None,
    )
    assert quiet.price_change == ""


def test_exposure_of_the_market_example(settings: Any) -> None:
    """384 A100s at US$10,000 = US$3.84M committed; at +37.5% US$5.28M, exposure US$1.44M."""
    settings.REPORTING_CURRENCY = "USD"
    a100 = GpuModelFactory(name="A100 80GB SXM")
    alice = UserFactory(username="alice")
    order = PurchaseOrderFactory(buyer=alice, currency="USD")
    OrderLineFactory(order=order, gpu_model=a100, quantity=384, unit_price=P("10000.00"))
    PriceQuoteFactory(gpu_model=a100, quoted_on=D("2023-04-14"), unit_price=P("13750.00"))
    # Closed orders commit nothing any more.
    OrderLineFactory(order=PurchaseOrderFactory(status="received"), gpu_model=a100)

    for grouping, key in [("gpu_model", "A100 80GB SXM"), ("buyer", "alice@gpu-buyers.example")]:
        report = exposure.exposure_totals(grouping, on=D("2023-04-20"))
        [row] = report.rows
        assert (row.key, row.currency, row.lines, row.units) == (key, "USD", 1, 384)
        assert (row.committed, row.replacement, row.exposure) == (
            P("3840000.00"),
            P("5280000.00"),
            P("1440000.00"),
        )
        assert report.grand_total("exposure") == P("1440000.00")


def test_exposure_never_adds_currencies_without_a_rate(settings: Any) -> None:
    settings.REPORTING_CURRENCY = "USD"
    a800 = GpuModelFactory(name="A800")
    vendor = VendorFactory(name="Euro Dealer")
    order = PurchaseOrderFactory(vendor=vendor, currency="EUR")
    OrderLineFactory(order=order, gpu_model=a800, quantity=10, unit_price=P("11000.00"))
    PriceQuoteFactory(gpu_model=a800, currency="EUR", unit_price=P("13200.00"))
    usd = PurchaseOrderFactory(vendor=vendor, currency="USD")
    OrderLineFactory(order=usd, gpu_model=a800, quantity=1, unit_price=P("12000.00"))  # unpriced

    report = exposure.exposure_totals("vendor", on=D("2023-04-20"))
    assert [(r.currency, r.committed, r.exposure, r.unpriced_lines) for r in report.rows] == [
        ("EUR", P("110000.00"), P("22000.00"), 0),
        ("USD", P("12000.00"), None, 1),
    ]
    assert report.missing_rates == ["EUR"]
    assert report.grand_total("committed") is None

    ExchangeRate.objects.create(
        currency="EUR", to_currency="USD", rate=P("1.10"), valid_on=D("2023-01-01")
    )
    ExchangeRate.objects.create(  # not valid yet on the day asked about
        currency="EUR", to_currency="USD", rate=P("9"), valid_on=D("2023-05-01")
    )
    report = exposure.exposure_totals("vendor", on=D("2023-04-20"))
    assert report.missing_rates == []
    assert report.grand_total("committed") == P("121000.00") + P("12000.00")
    assert report.grand_total("exposure") == P("24200.00")


def test_the_exposure_page_shows_the_market_example(
    admin_client_logged_in: Any, client: Any, django_capture_on_commit_callbacks: Any
) -> None:
    from django.contrib.auth.models import Permission
    from django.urls import reverse

    from orders.demo import load_demo

    with django_capture_on_commit_callbacks(execute=True):
        load_demo()
    url = reverse("admin:orders_exposure")
    page = admin_client_logged_in.get(url)
    assert page.status_code == 200
    text = page.content.decode()
    assert "Budget exposure of open orders" in text
    assert "1,440,000.00" in text  # PO-2023-0412's 384 A100s at +37.5%

    clerk = UserFactory(username="clerk", is_staff=True, role=NO_ROLE)
    clerk.user_permissions.add(Permission.objects.get(codename="view_purchaseorder"))
    client.force_login(clerk)
    assert client.get(url).status_code == 403  # no view permission on prices


@pytest.mark.parametrize("n_orders", [2, 12])
def test_the_vendor_list_sorts_by_every_scorecard_column_in_fixed_queries(
    admin_client_logged_in: Any, django_assert_num_queries: Any, n_orders: int
) -> None:
    from django.urls import reverse

    for i in range(n_orders):
        vendor = VendorFactory()
        _order(vendor, 8, [("2023-03-01", "2023-04-01"), ("2023-03-20", f"2023-05-{i + 1:02d}")])
    url = reverse("admin:orders_vendor_changelist")
    admin_client_logged_in.get(url)  # warm caches (content types, sessions)
    for column in range(3, 11):  # the sortable scorecard columns
        # savepoint and release, session, user, count, total count, page of vendors, price
        # histories, GPU names, the page's median slips
        with django_assert_num_queries(10):
            page = admin_client_logged_in.get(url, {"o": str(column)})
        assert page.status_code == 200


def test_an_open_alert_of_a_draft_counts_on_no_scorecard() -> None:
    """Guards the draft rule in the alerts' short path (vendor_tally.open_alerts_refresh): an
    alert saved on a draft (one taken back to draft before the next scan resolves it) leaves
    the tally as order_score says, and drift() finds nothing."""
    vendor = VendorFactory(name="Pacific Silicon Distribution")
    draft = _order(vendor, 8, [("2023-03-01", "2023-05-01")], status="draft")
    SlipAlert.objects.create(
        order=draft,
        code="lead_time_multiplied",
        severity="warning",
        quote=draft.quotes.get(),
        message="x",
    )
    [card] = [c for c in scorecards() if c.vendor == vendor]
    assert (card.orders, card.orders_with_open_alerts) == (0, 0)
    assert schedules.drift() == schedules.Drift()
