"""Price history, the price-rise scan and its emails (eager Celery, Django's mail outbox)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

import pytest

from orders import alerts, notifications, prices
from orders.models import AlertNotice, PriceAlert, PriceQuote
from tests.factories import (
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


@pytest.fixture(autouse=True)
def _rules(settings: Any) -> None:
    settings.PRICE_RISE_THRESHOLD_PERCENT = 20.0
    settings.PRICE_RISE_WINDOW_DAYS = 180
    settings.PROCUREMENT_MANAGERS = ["head-of-procurement@gpu-buyers.example"]
    settings.SITE_URL = "https://procurement.example.com"


@pytest.fixture
def market() -> dict[str, Any]:
    """A100 +37.5% and A800 +20.0% over five months from one dealer; an open A100 order."""
    vendor = VendorFactory(name="Pacific Silicon Distribution")
    a100 = GpuModelFactory(name="A100 80GB SXM")
    a800 = GpuModelFactory(name="A800")
    for day, price in [("2022-11-15", "10000"), ("2023-01-16", "11500"), ("2023-04-14", "13750")]:
        PriceQuoteFactory(vendor=vendor, gpu_model=a100, quoted_on=D(day), unit_price=P(price))
    for day, price in [("2022-11-15", "12000"), ("2023-04-14", "14400")]:
        PriceQuoteFactory(vendor=vendor, gpu_model=a800, quoted_on=D(day), unit_price=P(price))
    buyer = UserFactory(username="alice")
    order = PurchaseOrderFactory(vendor=vendor, buyer=buyer, placed_on=D("2023-04-20"))
    OrderLineFactory(order=order, gpu_model=a100, quantity=384, unit_price=P("13750.00"))
    return {"vendor": vendor, "a100": a100, "a800": a800, "buyer": buyer, "order": order}


def test_the_market_flags_a100_and_a800(market: dict[str, Any]) -> None:
    result = prices.scan_prices()
    assert (result.findings, result.new_alerts) == (2, 2)
    found = {a.gpu_model.name: a.rise_percent for a in PriceAlert.objects.all()}
    assert found == {"A100 80GB SXM": P("37.50"), "A800": P("20.00")}


def test_an_order_lines_price_is_a_quote_on_its_order_date(market: dict[str, Any]) -> None:
    prices.scan_prices()
    charged = PriceQuote.objects.get(source=PriceQuote.Source.ORDER)
    assert (charged.quoted_on, charged.unit_price, charged.vendor) == (
        D("2023-04-20"),
        P("13750.00"),
        market["vendor"],
    )
    assert charged.note == f"Charged on {market['order'].po_number}"
    assert prices.order_line_prices_sync() == 0  # recorded once


def test_drafts_and_cancelled_orders_were_never_charged(market: dict[str, Any]) -> None:
    for status in ("draft", "cancelled"):
        order = PurchaseOrderFactory(vendor=market["vendor"], status=status)
        OrderLineFactory(order=order, gpu_model=market["a800"], unit_price=P("99999"))
    prices.order_line_prices_sync()
    assert not PriceQuote.objects.filter(unit_price=P("99999")).exists()


def test_rescanning_raises_nothing_new_a_higher_price_does_a_lower_one_does_not(
    market: dict[str, Any],
) -> None:
    prices.scan_prices()
    assert prices.scan_prices().new_alerts == 0
    PriceQuoteFactory(
        vendor=market["vendor"],
        gpu_model=market["a100"],
        quoted_on=D("2023-05-02"),
        unit_price=P("13000"),
    )
    again = prices.scan_prices()
    assert (again.findings, again.new_alerts) == (2, 0)  # still +30%, but no new high
    PriceQuoteFactory(
        vendor=market["vendor"],
        gpu_model=market["a100"],
        quoted_on=D("2023-05-20"),
        unit_price=P("15000"),
    )
    assert prices.scan_prices().new_alerts == 1
    assert PriceAlert.objects.filter(gpu_model=market["a100"]).count() == 2


def test_currencies_are_never_mixed(market: dict[str, Any]) -> None:
    # A cheap EUR price must not count as the USD window low.
    PriceQuoteFactory(
        vendor=market["vendor"],
        gpu_model=market["a100"],
        quoted_on=D("2023-03-01"),
        unit_price=P("5000"),
        currency="EUR",
    )
    prices.scan_prices()
    alert = PriceAlert.objects.get(gpu_model=market["a100"])
    assert (alert.currency, alert.rise_percent) == ("USD", P("37.50"))


def test_buyers_of_open_orders_and_managers_get_one_digest_each(
    market: dict[str, Any], mailoutbox: list
) -> None:
    inactive = UserFactory(username="gone", is_active=False)
    closed = PurchaseOrderFactory(vendor=market["vendor"], status="received")
    OrderLineFactory(order=closed, gpu_model=market["a100"])
    other = PurchaseOrderFactory(buyer=inactive)
    OrderLineFactory(order=other, gpu_model=market["a100"])

    result = alerts.run_full_scan(today=D("2023-04-20"))
    assert result.new_alerts["price_rise"] == 2
    for email_id in result.email_ids:
        notifications.send_outbox_email(email_id)
    by_recipient = {m.to[0]: m for m in mailoutbox}
    assert set(by_recipient) == {
        "alice@gpu-buyers.example",  # buys A100s on an open order
        "head-of-procurement@gpu-buyers.example",
    }
    to_alice = by_recipient["alice@gpu-buyers.example"]
    assert to_alice.subject == "[GPU price] A100 80GB SXM +37.5% (Pacific Silicon Distribution)"
    # The latest A100 price is what alice's own order was charged (placed 2023-04-20).
    assert (
        "- A100 80GB SXM from Pacific Silicon Distribution: 10000.00 USD on 2022-11-15 -> "
        "13750.00 USD on 2023-04-20 (+37.5%)"
    ) in to_alice.body
    assert "A800" not in to_alice.body  # she buys no A800s
    managers = by_recipient["head-of-procurement@gpu-buyers.example"]
    assert "A800" in managers.body
    assert "+20.0%" in managers.body
    assert not PriceAlert.objects.filter(notified_at__isnull=True).exists()

    # The next run tells nobody again.
    mailoutbox.clear()
    assert alerts.run_full_scan(today=D("2023-04-21")).email_ids == []
    assert AlertNotice.objects.filter(price_alert__isnull=False).count() == 3


def test_a_recipient_who_stopped_buying_is_skipped_at_send_time(market: dict[str, Any]) -> None:
    prices.scan_prices()
    market["order"].status = "cancelled"
    market["order"].save()
    notifications.build_digests()
    skipped = AlertNotice.objects.filter(recipient=market["buyer"]).exclude(skipped_reason="")
    assert skipped.count() == 1
