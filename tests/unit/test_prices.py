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


def test_the_largest_rise_two_prices_can_make_is_recorded_exactly() -> None:
    """0.01 then 999,999,999,999.99: a typo in a price sheet. The alert is stored and read
    back (on PostgreSQL the column once overflowed, failing every price scan after it)."""
    vendor, gpu = VendorFactory(), GpuModelFactory()
    PriceQuoteFactory(vendor=vendor, gpu_model=gpu, quoted_on=D("2023-01-02"), unit_price=P("0.01"))
    PriceQuoteFactory(
        vendor=vendor, gpu_model=gpu, quoted_on=D("2023-01-03"), unit_price=P("999999999999.99")
    )
    assert prices.scan_prices().new_alerts == 1
    assert PriceAlert.objects.get().rise_percent == P("9999999999999800.00")


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


# --- import_prices, export_exposure, export_vendors ----------------------------------------------

PRICE_SHEET = (
    "vendor,gpu_model,unit_price,currency,quoted_on,note\r\n"
    "Pacific Silicon Distribution,A100 80GB SXM,14500.00,USD,2023-05-02,May list\r\n"
    "pacific silicon distribution, a800 ,12500,USD,2023-05-02,\r\n"
    "\r\n"
)


def _import_prices(content: str | bytes, *args: str) -> tuple[int, str, str]:
    from io import StringIO
    from pathlib import Path
    from tempfile import TemporaryDirectory

    from django.core.management import CommandError, call_command

    with TemporaryDirectory() as folder:
        path = Path(folder) / "prices.csv"
        path.write_bytes(content.encode() if isinstance(content, str) else content)
        out, err = StringIO(), StringIO()
        try:
            call_command("import_prices", str(path), *args, stdout=out, stderr=err)
            code = 0
        except CommandError as exc:
            err.write(str(exc))
            code = 1
    return code, out.getvalue(), err.getvalue()


def test_a_price_sheet_imports_once_and_raises_the_rise(
    market: dict[str, Any], django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        code, out, _ = _import_prices(PRICE_SHEET)
    assert code == 0
    assert "Created: 2 price quotes." in out
    assert PriceQuote.objects.filter(source="import").count() == 2
    imported = PriceQuote.objects.get(gpu_model=market["a800"], quoted_on=D("2023-05-02"))
    assert (imported.unit_price, imported.source) == (P("12500"), "import")
    # The on-commit price check raised the A100's new high (+45% over 10,000).
    assert PriceAlert.objects.filter(price__unit_price=P("14500")).exists()

    code, out, _ = _import_prices(PRICE_SHEET)
    assert code == 0
    assert "Unchanged (already recorded): 2 price quotes." in out
    assert PriceQuote.objects.filter(source="import").count() == 2


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        ("Nobody Ltd,A800,1,USD,2023-05-02,", "row 2, column vendor, value 'Nobody Ltd': Unknown"),
        ("Pacific Silicon Distribution,B9000,1,USD,2023-05-02,", "column gpu_model"),
        ("Pacific Silicon Distribution,A800,-5,USD,2023-05-02,", "column unit_price"),
        ("Pacific Silicon Distribution,A800,ten,USD,2023-05-02,", "Not a number"),
        ("Pacific Silicon Distribution,A800,1,usd,2023-05-02,", "column currency"),
        ("Pacific Silicon Distribution,A800,1,USD,02/05/2023,", "Not a date in ISO format"),
        ("Pacific Silicon Distribution,A800,1,USD,2999-01-01,", "in the future"),
    ],
)
def test_a_bad_price_row_names_row_and_column_and_writes_nothing(
    market: dict[str, Any], row: str, expected: str
) -> None:
    good = "Pacific Silicon Distribution,A800,13000,USD,2023-05-01,\r\n"
    before = PriceQuote.objects.count()
    code, _, err = _import_prices(
        "vendor,gpu_model,unit_price,currency,quoted_on,note\r\n" + row + "\r\n" + good
    )
    assert code == 1
    assert expected in err
    assert "nothing was imported" in err
    assert PriceQuote.objects.count() == before


def test_export_exposure_and_vendors_csv(market: dict[str, Any]) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("export_exposure", "--by", "gpu_model", stdout=out)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("grouping,key,currency,lines,units,committed,replacement,exposure")
    # alice's 384 A100s at 13,750; the latest A100 price is hers (synced by the scan) or the
    # dealer's April 13,750: no exposure either way.
    assert lines[1] == (
        "gpu_model,A100 80GB SXM,USD,1,384,5280000.00,5280000.00,0.00,0,USD,5280000.00,0.00"
    )

    out = StringIO()
    call_command("export_vendors", stdout=out)
    header, *rows = out.getvalue().splitlines()
    assert header == (
        "vendor,kind,orders,units,received_orders,on_time_rate,on_time_rate_latest_quote,"
        "mean_slip_days,median_slip_days,mean_requotes_per_order,open_alert_share,price_change"
    )
    dealer = next(r for r in rows if r.startswith("Pacific Silicon Distribution"))
    assert dealer.endswith(",A100 80GB SXM +37.5% USD")


def test_an_imported_order_line_becomes_a_price_point(
    django_capture_on_commit_callbacks: Any,
) -> None:
    from orders import imports

    GpuModelFactory(name="A100 80GB SXM")
    sheet = (
        "po_number,vendor,buyer_email,gpu_model,quantity,unit_price,currency,placed_on\n"
        "PO-IMP-1,Northwind Servers,alice@gpu-buyers.example,A100 80GB SXM,8,13750.00,USD,"
        "2023-04-05\n"
    )
    with django_capture_on_commit_callbacks(execute=True):
        assert imports.orders_import(content=sheet.encode()).ok
    charged = PriceQuote.objects.get(source=PriceQuote.Source.ORDER)
    assert (charged.vendor.name, charged.unit_price, charged.quoted_on) == (
        "Northwind Servers",
        P("13750.00"),
        D("2023-04-05"),
    )
