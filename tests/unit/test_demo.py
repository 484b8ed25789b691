from io import StringIO

import pytest
from django.apps import apps
from django.core.management import call_command

from orders.models import PurchaseOrder

pytestmark = pytest.mark.django_db


def _row_counts() -> dict[str, int]:
    return {m._meta.label: m.objects.count() for m in apps.get_app_config("orders").get_models()}


def test_load_demo_twice_changes_nothing() -> None:
    out = StringIO()
    call_command("load_demo", stdout=out)
    assert "Demo data loaded" in out.getvalue()
    first = _row_counts()
    updated = dict(PurchaseOrder.objects.values_list("po_number", "updated_at"))

    out = StringIO()
    call_command("load_demo", stdout=out)
    assert "nothing changed" in out.getvalue()
    assert _row_counts() == first
    assert dict(PurchaseOrder.objects.values_list("po_number", "updated_at")) == updated


def test_demo_covers_the_market_scenarios() -> None:
    call_command("load_demo", stdout=StringIO())
    orders = {o.po_number: o for o in PurchaseOrder.objects.with_lead_times()}
    kinds = set(PurchaseOrder.objects.values_list("vendor__kind", flat=True))
    assert {"oem", "distributor", "reseller"} <= kinds
    gpus = set(PurchaseOrder.objects.values_list("lines__gpu_model__name", flat=True))
    assert {"A100 80GB SXM", "A800", "H100 SXM", "A10"} <= gpus
    # ~1 month at first, 3 months or more later; one pushed to December; one on time.
    assert all(25 <= o.baseline_lead_days <= 35 for o in orders.values() if o.baseline_lead_days)
    assert any(o.current_lead_days >= 90 for o in orders.values() if o.current_lead_days)
    assert any(o.current_delivery_date.month == 12 for o in orders.values() if o.requote_count)
    on_time = orders["PO-2023-0301"]
    assert on_time.status == PurchaseOrder.Status.RECEIVED
    assert on_time.slip_days == 0
