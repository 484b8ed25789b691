from datetime import date, timedelta
from io import StringIO
from typing import Any

import pytest
from django.apps import apps
from django.core import mail
from django.core.management import call_command
from django.db.models import Max

from orders.demo import ORDERS, STORY_YEAR, load_demo
from orders.models import Delivery, DeliveryQuote, PriceQuote, PurchaseOrder, Quota, SlipAlert

pytestmark = pytest.mark.django_db
D = date.fromisoformat


def _row_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_app_config("orders").get_models()}


def test_load_demo_twice_changes_nothing() -> None:
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert "Demo data loaded" in out.getvalue()
    # Each count in its number: one exchange rate, several deliveries.
    assert "1 exchange rate," in out.getvalue()
    assert "3 deliveries" in out.getvalue()
    first = _row_counts()
    updated = dict(PurchaseOrder.objects.values_list("po_number", "updated_at"))

    out = StringIO()
    call_command("load_demo", stdout=out)
    assert "nothing changed" in out.getvalue()
    assert _row_counts() == first
    assert dict(PurchaseOrder.objects.values_list("po_number", "updated_at")) == updated


def test_loaded_again_a_year_later_the_demo_keeps_its_dates() -> None:
    load_demo(as_of=D("2026-12-04"))
    first = _row_counts()
    assert load_demo(as_of=D("2028-03-01")).total == 0
    assert _row_counts() == first
    assert PurchaseOrder.objects.filter(po_number="PO-2026-0412").exists()


@pytest.mark.parametrize("as_of", [None, D("2026-12-04"), D("2027-08-01"), D("2027-10-06")])
def test_demo_covers_the_market_scenarios(as_of: date | None) -> None:
    load_demo(as_of=as_of)
    orders = {o.po_number[8:]: o for o in PurchaseOrder.objects.all()}
    kinds = set(PurchaseOrder.objects.values_list("vendor__kind", flat=True))
    assert {"oem", "distributor", "reseller"} <= kinds
    gpus = set(PurchaseOrder.objects.values_list("lines__gpu_model__name", flat=True))
    assert {"A100 80GB SXM", "A800", "H100 SXM", "A10"} <= gpus
    # ~1 month at first, 3 months or more later; one pushed to December; one on time.
    assert all(25 <= o.baseline_lead_days <= 35 for o in orders.values() if o.baseline_lead_days)
    assert any(o.current_lead_days >= 90 for o in orders.values() if o.current_lead_days)
    assert any(o.current_delivery_date.month == 12 for o in orders.values() if o.requote_count)
    on_time = orders["0301"]
    assert on_time.status == PurchaseOrder.Status.RECEIVED
    assert on_time.slip_days == 0


@pytest.mark.parametrize(
    ("as_of", "year"),
    [
        (D("2026-12-04"), 2026),
        (D("2027-03-01"), 2026),
        (D("2027-10-05"), 2026),  # the story's last delivery (6 October) still to come
        (D("2027-10-06"), 2027),
        (D("2031-01-15"), 2030),
    ],
)
def test_the_demo_ends_in_the_year_up_to_the_day_it_is_loaded(as_of: date, year: int) -> None:
    load_demo(as_of=as_of)
    assert {po[:8] for po in PurchaseOrder.objects.values_list("po_number", flat=True)} == {
        f"PO-{year}-"
    }
    latest = max(
        DeliveryQuote.objects.aggregate(day=Max("quoted_on"))["day"],
        Delivery.objects.aggregate(day=Max("delivered_on"))["day"],
        PriceQuote.objects.aggregate(day=Max("quoted_on"))["day"],
    )
    # Nothing dated after the day it is loaded; its last event within the year before.
    assert as_of - timedelta(days=366) < latest <= as_of
    # No open order's dates years in the past; the quota periods still cover half-years.
    for order in PurchaseOrder.objects.open():
        assert order.placed_on > as_of - timedelta(days=2 * 366)
    assert set(Quota.objects.values_list("period_start", "period_end")) == {
        (D(f"{year}-07-01"), D(f"{year}-12-31")),
        (D(f"{year}-01-01"), D(f"{year}-06-30")),
    }


def test_the_command_dates_the_story_up_to_today(
    freezer_today: Any, django_capture_on_commit_callbacks: Any
) -> None:
    freezer_today("2026-12-04")
    with django_capture_on_commit_callbacks(execute=True):
        call_command("load_demo", stdout=StringIO())
    december = PurchaseOrder.objects.all().get(po_number="PO-2026-0412")
    assert december.current_delivery_date == D("2026-12-15")  # "Pushed to December."
    assert december.placed_on == D("2026-04-14")
    assert DeliveryQuote.objects.aggregate(day=Max("quoted_on"))["day"] == D("2026-07-21")
    # The alerts read as current: a delivery that slipped weeks ago, not years.
    messages = " ".join(SlipAlert.objects.values_list("message", flat=True))
    assert "passed 66 days ago" in messages
    assert "into December 2026" in messages
    assert mail.outbox
    assert all(str(STORY_YEAR) not in m.body for m in mail.outbox)


def test_as_written_keeps_the_story_dates() -> None:
    call_command("load_demo", "--as-written", stdout=StringIO())
    assert set(PurchaseOrder.objects.values_list("po_number", flat=True)) == {
        spec.po_number for spec in ORDERS
    }
