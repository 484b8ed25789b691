"""The admin: fixed-cost lists, the figures buyers look for, and edits that go through services."""

from __future__ import annotations

from datetime import date
from io import StringIO
from typing import Any

import pytest
from django.contrib import admin
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import services
from orders.demo import load_demo
from orders.models import (
    Delivery,
    DeliveryQuote,
    OutboxEmail,
    PriceAlert,
    PurchaseOrder,
    ScanRun,
    SlipAlert,
)
from tests.factories import (
    GpuModelFactory,
    OrderLineFactory,
    PurchaseOrderFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db

D = date.fromisoformat
CHANGELIST = reverse("admin:orders_purchaseorder_changelist")


def _orders(n: int) -> None:
    vendors = [VendorFactory() for _ in range(3)]
    buyers = [UserFactory() for _ in range(3)]
    gpus = [GpuModelFactory(name=name) for name in ("A100 80GB SXM", "H100 SXM")]
    for i in range(n):
        order = PurchaseOrderFactory(vendor=vendors[i % 3], buyer=buyers[i % 3])
        OrderLineFactory(order=order, gpu_model=gpus[i % 2])
        OrderLineFactory(order=order, gpu_model=gpus[(i + 1) % 2], quantity=2)
        services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
        services.quote_add(order=order, quoted_on=D("2023-06-01"), delivery_date=D("2023-08-01"))


def _changelist_queries(client: Any, query: str = "") -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(CHANGELIST + query)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("query", ["", "?slipping=yes", "?q=Vendor", "?o=-10"])
def test_order_changelist_runs_the_same_queries_for_10_and_200_orders(
    admin_client_logged_in: Any, django_assert_num_queries: Any, query: str
) -> None:
    _orders(10)
    with_10 = _changelist_queries(admin_client_logged_in, query)
    _orders(190)
    with django_assert_num_queries(with_10):
        response = admin_client_logged_in.get(CHANGELIST + query + ("&" if query else "?") + "all=")
    assert response.status_code == 200
    # Session, user, the page, its count and prefetches, the date drill-down (2), each
    # filter's choices in two steps (keys along the index, then names), a vendor lookup per
    # search word.
    assert with_10 <= 17, f"{with_10} queries for one page of orders"


def test_changelist_shows_lead_times_and_slip(admin_client_logged_in: Any) -> None:
    load_demo()
    response = admin_client_logged_in.get(CHANGELIST, {"q": "PO-2023-0412"})
    row = response.context["cl"].result_list[0]
    assert (row.baseline_lead_days, row.current_lead_days, row.slip_days) == (31, 245, 214)
    html = response.content.decode()
    for text in ("PO-2023-0412", "Pacific Silicon Distribution", "384x A100 80GB SXM", "+214"):
        assert text in html


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (
            {"slipping": "yes"},
            {"PO-2023-0412", "PO-2023-0320", "PO-2023-0418", "PO-2023-0405", "PO-2023-0502"},
        ),
        ({"slipping": "no"}, {"PO-2023-0301", "PO-2023-0510"}),
        ({"status__exact": "partially_received"}, {"PO-2023-0418", "PO-2023-0405"}),
        ({"q": "FlipCard"}, {"PO-2023-0418", "PO-2023-0502"}),
        ({"placed_on__month": "3", "placed_on__year": "2023"}, {"PO-2023-0301", "PO-2023-0320"}),
    ],
)
def test_changelist_filters(admin_client_logged_in: Any, params: dict, expected: set) -> None:
    load_demo()
    response = admin_client_logged_in.get(CHANGELIST, params)
    assert {o.po_number for o in response.context["cl"].result_list} == expected


def test_changelist_filters_by_gpu_model_vendor_and_buyer(admin_client_logged_in: Any) -> None:
    load_demo()
    order = PurchaseOrder.objects.get(po_number="PO-2023-0405")
    a10 = order.lines.get(gpu_model__name="A10").gpu_model
    for params in (
        {"lines__gpu_model__id__exact": a10.pk},
        {"vendor__id__exact": order.vendor_id, "buyer__id__exact": order.buyer_id},
    ):
        response = admin_client_logged_in.get(CHANGELIST, params)
        found = {o.po_number for o in response.context["cl"].result_list}
        assert "PO-2023-0405" in found
        assert all(
            o.vendor_id == order.vendor_id or "lines__gpu_model__id__exact" in params
            for o in response.context["cl"].result_list
        )


def test_every_admin_page_renders(
    admin_client_logged_in: Any, django_capture_on_commit_callbacks: Any
) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        load_demo()  # its quotes trigger slip checks, so alerts and emails exist too
    call_command("scan_slips", stdout=StringIO())
    for model in admin.site._registry:
        if model._meta.app_label not in ("orders", "django_celery_beat"):
            continue
        name = f"admin:{model._meta.app_label}_{model._meta.model_name}"
        obj = model.objects.first()
        # The beat schedule only has crontab/interval rows; every model of ours has data.
        assert obj is not None or model._meta.app_label == "django_celery_beat", model
        pages = {
            reverse(f"{name}_changelist"): 200,
            # Alerts, emails and scan runs are records made by the app, not by hand.
            reverse(f"{name}_add"): 403
            if model in (SlipAlert, PriceAlert, OutboxEmail, ScanRun)
            else 200,
        }
        if obj is not None:
            pages[reverse(f"{name}_change", args=[obj.pk])] = 200
        for url, status in pages.items():
            assert admin_client_logged_in.get(url).status_code == status, url


def _form_data(response: Any) -> dict[str, Any]:
    """POST data equal to what the admin change form shows, inlines included."""
    data: dict[str, Any] = {}
    form = response.context["adminform"].form
    for name in form.fields:
        value = form[name].value()
        if value is not None:
            data[name] = value
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        for key, value in formset.management_form.initial.items():
            data[f"{formset.prefix}-{key}"] = value
        for f in formset.initial_forms:
            for name in f.fields:
                value = f[name].value()
                if value is not None:
                    data[f.add_prefix(name)] = value
    return data


def _add_inline_row(data: dict[str, Any], prefix: str, **fields: Any) -> None:
    index = int(data[f"{prefix}-TOTAL_FORMS"])
    data[f"{prefix}-TOTAL_FORMS"] = index + 1
    for name, value in fields.items():
        data[f"{prefix}-{index}-{name}"] = value


def _change_url(order: PurchaseOrder) -> str:
    return reverse("admin:orders_purchaseorder_change", args=[order.pk])


def test_a_quote_added_on_the_order_page_is_appended_through_the_service(
    admin_client_logged_in: Any, admin_user: Any
) -> None:
    load_demo()
    order = PurchaseOrder.objects.get(po_number="PO-2023-0320")
    history = list(order.quotes.values_list("quoted_on", "delivery_date"))
    data = _form_data(admin_client_logged_in.get(_change_url(order)))
    _add_inline_row(
        data, "quotes", quoted_on="2023-06-01", delivery_date="2023-07-31", note="Another push"
    )

    response = admin_client_logged_in.post(_change_url(order), data)

    assert response.status_code == 302, response.context and response.context["errors"]
    quotes = list(order.quotes.order_by("quoted_on", "id"))
    assert [(q.quoted_on, q.delivery_date) for q in quotes[:-1]] == history
    assert (quotes[-1].delivery_date, quotes[-1].recorded_by) == (D("2023-07-31"), admin_user)


def test_a_bad_quote_on_the_order_page_is_an_error_not_a_crash(
    admin_client_logged_in: Any,
) -> None:
    load_demo()
    order = PurchaseOrder.objects.get(po_number="PO-2023-0320")
    count = DeliveryQuote.objects.count()
    data = _form_data(admin_client_logged_in.get(_change_url(order)))
    _add_inline_row(data, "quotes", quoted_on="2023-03-01", delivery_date="2023-03-02")

    response = admin_client_logged_in.post(_change_url(order), data)

    assert response.status_code == 200
    assert "is before the order was placed (2023-03-20)" in response.content.decode()
    assert DeliveryQuote.objects.count() == count


def test_receipts_on_the_order_page_update_status_and_refuse_over_receipt(
    admin_client_logged_in: Any,
) -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    line = OrderLineFactory(order=order, quantity=8)
    data = _form_data(admin_client_logged_in.get(_change_url(order)))
    _add_inline_row(data, "deliveries", line=line.pk, quantity=5, delivered_on="2023-05-15")
    _add_inline_row(data, "deliveries", line=line.pk, quantity=4, delivered_on="2023-05-16")

    response = admin_client_logged_in.post(_change_url(order), data)
    assert response.status_code == 200
    assert "add up to 9, more than the 8 ordered" in response.content.decode()
    assert not Delivery.objects.exists()

    data = _form_data(admin_client_logged_in.get(_change_url(order)))
    _add_inline_row(data, "deliveries", line=line.pk, quantity=5, delivered_on="2023-05-15")
    response = admin_client_logged_in.post(_change_url(order), data)
    assert response.status_code == 302
    order.refresh_from_db()
    assert order.status == PurchaseOrder.Status.PARTIALLY_RECEIVED


def test_a_new_order_with_lines_and_a_quote_in_one_form(admin_client_logged_in: Any) -> None:
    vendor, buyer, gpu = VendorFactory(), UserFactory(), GpuModelFactory()
    url = reverse("admin:orders_purchaseorder_add")
    data = _form_data(admin_client_logged_in.get(url))
    data |= {
        "po_number": "PO-NEW-1",
        "vendor": vendor.pk,
        "buyer": buyer.pk,
        "status": "placed",
        "placed_on": "2023-04-14",
        "currency": "USD",
    }
    _add_inline_row(data, "lines", gpu_model=gpu.pk, quantity=384, unit_price="10000.00")
    _add_inline_row(data, "quotes", quoted_on="2023-04-01", delivery_date="2023-05-15")

    response = admin_client_logged_in.post(url, data)
    assert response.status_code == 200  # quoted before the order was placed
    assert "is before the order was placed (2023-04-14)" in response.content.decode()
    assert not PurchaseOrder.objects.filter(po_number="PO-NEW-1").exists()

    data["quotes-0-quoted_on"] = "2023-04-14"
    response = admin_client_logged_in.post(url, data)
    assert response.status_code == 302
    order = PurchaseOrder.objects.all().get(po_number="PO-NEW-1")
    assert (order.current_lead_days, order.lines.get().quantity) == (31, 384)


def test_quotes_cannot_be_edited_or_deleted_in_the_admin(admin_client_logged_in: Any) -> None:
    load_demo()
    quote = DeliveryQuote.objects.first()
    url = reverse("admin:orders_deliveryquote_change", args=[quote.pk])
    response = admin_client_logged_in.post(url, {"delivery_date": "2030-01-01"})
    assert response.status_code == 403
    delete = reverse("admin:orders_deliveryquote_delete", args=[quote.pk])
    assert admin_client_logged_in.post(delete, {"post": "yes"}).status_code == 403
    quote.refresh_from_db()
    assert quote.delivery_date != D("2030-01-01")
