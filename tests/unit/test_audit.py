"""The audit trail: every change to orders, lines, quotes, receipts, prices and allocations is
recorded with who, when and what, whichever path wrote it (admin, services, bulk imports,
the price sync), is readable per order in the admin, exportable as CSV, and never revertible."""

from __future__ import annotations

import csv
from datetime import date, timedelta
from decimal import Decimal
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import Permission
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from orders import audit, quotas, services
from orders.history import acting, history_model
from orders.imports import orders_import
from orders.models import (
    Allocation,
    Delivery,
    DeliveryQuote,
    OrderLine,
    PriceQuote,
    PurchaseOrder,
)
from orders.prices import order_line_prices_sync
from tests.factories import (
    NO_ROLE,
    GpuModelFactory,
    OrderLineFactory,
    PriceQuoteFactory,
    PurchaseOrderFactory,
    QuotaFactory,
    UserFactory,
    VendorFactory,
)
from tests.unit.test_admin import _add_inline_row, _change_url, _form_data

pytestmark = pytest.mark.django_db
D = date.fromisoformat


def _records(model: Any, **filters: Any) -> list[Any]:
    return list(
        history_model(model)
        .objects.filter(**filters)
        .select_related("history_user")
        .order_by("history_date", "history_id")
    )


def _actions(model: Any, **filters: Any) -> list[tuple[str, str | None]]:
    """(history type, username) of each record, oldest first."""
    return [
        (r.history_type, r.history_user.username if r.history_user else None)
        for r in _records(model, **filters)
    ]


def _entries(order: PurchaseOrder, model: str) -> list[audit.TrailEntry]:
    """The order's trail entries of one kind, oldest first."""
    return [e for e in reversed(audit.order_trail(order.pk)) if e.model == model]


# --- Through the admin --------------------------------------------------------------------------


def test_an_order_created_changed_and_deleted_in_the_admin_is_recorded_with_the_user(
    admin_client_logged_in: Any, admin_user: Any
) -> None:
    vendor, buyer, gpu = VendorFactory(), UserFactory(), GpuModelFactory()
    url = reverse("admin:orders_purchaseorder_add")
    data = _form_data(admin_client_logged_in.get(url))
    data |= {
        "po_number": "PO-AUDIT-1",
        "vendor": vendor.pk,
        "buyer": buyer.pk,
        "status": "placed",
        "placed_on": "2023-04-14",
        "currency": "USD",
    }
    _add_inline_row(data, "lines", gpu_model=gpu.pk, quantity=384, unit_price="10000.00")
    _add_inline_row(data, "quotes", quoted_on="2023-04-14", delivery_date="2023-05-15")
    assert admin_client_logged_in.post(url, data).status_code == 302
    order = PurchaseOrder.objects.get(po_number="PO-AUDIT-1")

    data = _form_data(admin_client_logged_in.get(_change_url(order)))
    data |= {"status": "confirmed", "need_by": "2023-09-30"}
    data["lines-0-quantity"] = 300
    assert admin_client_logged_in.post(_change_url(order), data).status_code == 302

    orders = _entries(order, "order")
    assert [(e.action, e.who) for e in orders] == [("+", "admin"), ("~", "admin")]
    assert "PO number: PO-AUDIT-1" in orders[0].changes_text()
    assert orders[1].changes_text() == "status: Placed -> Confirmed; need by: (empty) -> 2023-09-30"
    lines = _entries(order, "line")
    assert [(e.action, e.who, e.changes_text()) for e in lines[1:]] == [
        ("~", "admin", "quantity: 384 -> 300")
    ]
    assert (
        lines[0].changes_text() == "GPU model: A100 80GB SXM; quantity: 384; unit price: 10000.00"
    )
    [quote] = _entries(order, "quote")
    assert (quote.action, quote.who, quote.object) == (
        "+",
        "admin",
        "delivery 2023-05-15 quoted 2023-04-14",
    )

    # The admin refuses to delete an order with quotes (they cannot be deleted there); code
    # can, and its lines and quotes go with it and say so: the trail outlives the order.
    delete = reverse("admin:orders_purchaseorder_delete", args=[order.pk])
    assert admin_client_logged_in.post(delete, {"post": "yes"}).status_code == 403
    order_id = order.pk
    with acting(user=admin_user, reason="entered twice"):
        order.delete()
    order.pk = order_id
    assert _actions(PurchaseOrder, id=order_id)[-1] == ("-", "admin")
    assert _actions(DeliveryQuote, order_id=order_id) == [("+", "admin"), ("-", "admin")]
    assert [e.action for e in _entries(order, "line")] == ["+", "~", "-"]
    assert {e.po_number for e in audit.order_trail(order.pk)} == {"PO-AUDIT-1"}


def test_an_order_deleted_in_the_admin_is_recorded_with_its_lines(
    admin_client_logged_in: Any,
) -> None:
    line = OrderLineFactory()
    delete = reverse("admin:orders_purchaseorder_delete", args=[line.order.pk])
    assert admin_client_logged_in.post(delete, {"post": "yes"}).status_code == 302
    assert _actions(PurchaseOrder, id=line.order.pk) == [("+", None), ("-", "admin")]
    assert _actions(OrderLine, id=line.pk) == [("+", None), ("-", "admin")]


def test_receipts_added_and_removed_on_the_order_page_are_recorded(
    admin_client_logged_in: Any,
) -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    line = OrderLineFactory(order=order, quantity=8)
    data = _form_data(admin_client_logged_in.get(_change_url(order)))
    _add_inline_row(data, "deliveries", line=line.pk, quantity=5, delivered_on="2023-05-15")
    assert admin_client_logged_in.post(_change_url(order), data).status_code == 302
    receipt = Delivery.objects.get()

    data = _form_data(admin_client_logged_in.get(_change_url(order)))
    data["deliveries-0-DELETE"] = "on"
    assert admin_client_logged_in.post(_change_url(order), data).status_code == 302

    assert not Delivery.objects.exists()
    assert _actions(Delivery, id=receipt.pk) == [("+", "admin"), ("-", "admin")]
    entries = _entries(order, "receipt")
    assert entries[0].object == "5 x A100 80GB SXM received 2023-05-15"
    assert "quantity: 5" in entries[0].changes_text()
    # The order's status followed the receipts, and that is in the trail too.
    # (The admin saves the order with each submit: a record with no field changed.)
    statuses = [e.changes_text() for e in _entries(order, "order") if e.action == "~"]
    statuses = [text for text in statuses if text]
    assert statuses == [
        "status: Confirmed -> Partially received",
        "status: Partially received -> Confirmed",
    ]


def test_a_price_quote_added_and_deleted_in_the_admin_is_recorded(
    admin_client_logged_in: Any,
) -> None:
    vendor, gpu = VendorFactory(name="Acme"), GpuModelFactory()
    url = reverse("admin:orders_pricequote_add")
    data = {
        "vendor": vendor.pk,
        "gpu_model": gpu.pk,
        "unit_price": "12500.00",
        "currency": "USD",
        "quoted_on": "2023-05-02",
        "note": "",
    }
    assert admin_client_logged_in.post(url, data).status_code == 302
    price = PriceQuote.objects.get()
    delete = reverse("admin:orders_pricequote_delete", args=[price.pk])
    assert admin_client_logged_in.post(delete, {"post": "yes"}).status_code == 302

    assert _actions(PriceQuote, id=price.pk) == [("+", "admin"), ("-", "admin")]
    rows = list(audit.history_rows(model_keys=["price"]))
    assert [row[6] for row in rows] == ["created", "deleted"]
    assert rows[0][4] == "A100 80GB SXM from Acme: 12500.00 USD on 2023-05-02"
    assert "unit price: 12500.00; currency: USD; quoted on: 2023-05-02" in rows[0][7]


def test_an_allocation_created_changed_and_deleted_in_the_admin_is_recorded(
    admin_client_logged_in: Any,
) -> None:
    line = OrderLineFactory(quantity=384)
    quota = QuotaFactory(gpu_model=line.gpu_model, team__name="LLM pre-training")
    add = reverse("admin:orders_allocation_add")
    data = {"quota": quota.pk, "line": line.pk, "gpus": 288, "priority": 1}
    assert admin_client_logged_in.post(add, data).status_code == 302
    allocation = Allocation.objects.get()
    change = reverse("admin:orders_allocation_change", args=[allocation.pk])
    assert admin_client_logged_in.post(change, data | {"gpus": 200}).status_code == 302
    delete = reverse("admin:orders_allocation_delete", args=[allocation.pk])
    assert admin_client_logged_in.post(delete, {"post": "yes"}).status_code == 302

    assert _actions(Allocation, id=allocation.pk) == [
        ("+", "admin"),
        ("~", "admin"),
        ("-", "admin"),
    ]
    entries = _entries(line.order, "allocation")
    assert entries[1].changes_text() == "GPUs: 288 -> 200"
    assert entries[0].object.startswith("288 x A100 80GB SXM for LLM pre-training")
    assert entries[0].po_number == line.order.po_number


# --- Through the services -----------------------------------------------------------------------


def test_services_record_the_user_they_are_told_about() -> None:
    buyer, manager = UserFactory(username="alice"), UserFactory(username="carol")
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    line = OrderLineFactory(order=order, quantity=10)
    quote = services.quote_add(
        order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"), recorded_by=buyer
    )
    receipt = services.delivery_record(
        line=line, quantity=4, delivered_on=D("2023-05-15"), recorded_by=buyer
    )
    receipt_id = receipt.pk
    services.delivery_remove(delivery=receipt, removed_by=manager)
    quota = QuotaFactory(gpu_model=line.gpu_model)
    allocation_id = quotas.allocation_set(quota=quota, line=line, gpus=6, by=manager).pk
    quotas.allocation_set(quota=quota, line=line, gpus=4, by=buyer)
    quotas.allocation_set(quota=quota, line=line, gpus=0, by=manager)
    with acting(user=buyer, reason="price sheet from the vendor's email"):
        price = services.price_quote_add(
            vendor=order.vendor,
            gpu_model=line.gpu_model,
            unit_price=Decimal("9999.00"),
            quoted_on=D("2023-04-01"),
        )
        order.notes = "Split shipment agreed"
        order.save()

    assert _actions(DeliveryQuote, id=quote.pk) == [("+", "alice")]
    assert _actions(Delivery, id=receipt_id) == [("+", "alice"), ("-", "carol")]
    assert _actions(Allocation, id=allocation_id) == [
        ("+", "carol"),
        ("~", "alice"),
        ("-", "carol"),
    ]
    assert _actions(PriceQuote, id=price.pk) == [("+", "alice")]
    [change] = [e for e in _entries(order, "order") if e.reason]
    assert (change.who, change.reason) == ("alice", "price sheet from the vendor's email")
    assert change.changes_text() == "notes: (empty) -> Split shipment agreed"
    # Nobody named, no request: recorded, with no user.
    line.quantity = 12
    line.save()
    assert _actions(OrderLine, id=line.pk)[-1] == ("~", None)


def test_moving_an_allocation_records_both_sides() -> None:
    manager = UserFactory(username="carol")
    gpu = GpuModelFactory()
    late, early = OrderLineFactory(gpu_model=gpu, quantity=100), OrderLineFactory(gpu_model=gpu)
    quota = QuotaFactory(gpu_model=gpu)
    source = quotas.allocation_set(quota=quota, line=late, gpus=10, by=manager)
    target = quotas.allocations_move(quota=quota, from_line=late, to_line=early, gpus=4, by=manager)

    assert _actions(Allocation, id=source.pk) == [("+", "carol"), ("~", "carol")]
    assert _actions(Allocation, id=target.pk) == [("+", "carol")]
    assert _entries(late.order, "allocation")[-1].changes_text() == "GPUs: 10 -> 6"


# --- Bulk paths: one record per row inserted ----------------------------------------------------

ORDERS_CSV = (
    "po_number,vendor,buyer_email,gpu_model,quantity,unit_price,currency,placed_on,status,"
    "quoted_on,delivery_date\n"
    "PO-1,Acme,alice@example.com,A100 80GB SXM,384,10000,USD,2023-04-14,placed,"
    "2023-04-14,2023-05-15\n"
    "PO-1,Acme,alice@example.com,H100 SXM,16,41500,USD,2023-04-14,placed,2023-04-14,2023-05-15\n"
    "PO-2,Acme,bob@example.com,A10,40,2800,USD,2023-04-18,placed,,\n"
)


def _counts() -> dict[str, int]:
    return {
        model.__name__: history_model(model).objects.count()
        for model in (PurchaseOrder, OrderLine, DeliveryQuote, PriceQuote)
    }


def _import_orders_file(tmp_path: Path) -> None:
    path = tmp_path / "orders.csv"
    path.write_text(ORDERS_CSV)
    call_command("import_orders", str(path), stdout=StringIO())


def _check_orders_import(tmp_path: Path) -> None:
    _import_orders_file(tmp_path)

    assert _counts() == {"PurchaseOrder": 2, "OrderLine": 3, "DeliveryQuote": 1, "PriceQuote": 0}
    assert PurchaseOrder.objects.count() == 2  # one record per row, as many as rows
    records = history_model(OrderLine).objects.all()
    assert {r.history_type for r in records} == {"+"}
    assert {r.history_change_reason for r in records} == {"import_orders orders.csv"}
    assert {r.id for r in records} == set(OrderLine.objects.values_list("pk", flat=True))
    saved = {(line.pk, line.quantity, line.unit_price) for line in OrderLine.objects.all()}
    assert {(r.id, r.quantity, r.unit_price) for r in records} == saved

    _import_orders_file(tmp_path)  # all recorded already: nothing new, no new records
    assert _counts() == {"PurchaseOrder": 2, "OrderLine": 3, "DeliveryQuote": 1, "PriceQuote": 0}


def test_import_orders_writes_one_record_per_row_inserted(tmp_path: Path) -> None:
    _check_orders_import(tmp_path)


@pytest.mark.postgres
def test_import_orders_by_copy_writes_one_record_per_row_inserted(tmp_path: Path) -> None:
    _check_orders_import(tmp_path)


def test_an_import_in_the_admin_records_the_user(admin_user: Any) -> None:
    report = orders_import(content=ORDERS_CSV.encode(), user=admin_user, filename="po.csv")
    assert report.ok, report.errors
    assert set(_actions(PurchaseOrder)) == {("+", "admin")}
    assert {r.history_change_reason for r in _records(DeliveryQuote)} == {"import_orders po.csv"}


def _check_quotes_import(tmp_path: Path) -> None:
    _import_orders_file(tmp_path)
    path = tmp_path / "requotes.csv"
    path.write_text(
        "po_number,quoted_on,delivery_date,note,gpu_model\n"
        "PO-1,2023-04-14,2023-05-15,,\n"  # recorded already
        "PO-1,2023-06-02,2023-08-31,Allocation cut,\n"
        "PO-1,2023-06-02,2023-09-15,,H100 SXM\n"
    )
    call_command("import_quotes", str(path), stdout=StringIO())

    new = _records(DeliveryQuote, history_change_reason="import_quotes requotes.csv")
    assert len(new) == 2 == DeliveryQuote.objects.count() - 1
    assert {r.id for r in new} == set(
        DeliveryQuote.objects.filter(quoted_on=D("2023-06-02")).values_list("pk", flat=True)
    )


def test_import_quotes_writes_one_record_per_quote_added(tmp_path: Path) -> None:
    _check_quotes_import(tmp_path)


@pytest.mark.postgres
def test_import_quotes_by_copy_writes_one_record_per_quote_added(tmp_path: Path) -> None:
    _check_quotes_import(tmp_path)


def _check_prices(tmp_path: Path) -> None:
    vendor, gpu = VendorFactory(name="Acme"), GpuModelFactory()
    PriceQuoteFactory(vendor=vendor, gpu_model=gpu, unit_price=Decimal("9000"))
    path = tmp_path / "prices.csv"
    path.write_text(
        "vendor,gpu_model,unit_price,currency,quoted_on,note\n"
        "Acme,A100 80GB SXM,9000,USD,2022-11-15,\n"  # recorded already: skipped
        "Acme,A100 80GB SXM,9500,USD,2022-12-15,\n"
        "Acme,A100 80GB SXM,9900,USD,2023-01-15,\n"
    )
    call_command("import_prices", str(path), stdout=StringIO())
    imported = _records(PriceQuote, history_change_reason="import_prices prices.csv")
    assert len(imported) == 2
    assert {r.unit_price for r in imported} == {Decimal("9500.00"), Decimal("9900.00")}

    # The database skips a price recorded meanwhile: no record for it, one for the new one.
    known = PriceQuote(
        vendor=vendor,
        gpu_model=gpu,
        unit_price=Decimal("9500"),
        currency="USD",
        quoted_on=D("2022-12-15"),
        note="",
    )
    new = PriceQuote(
        vendor=vendor,
        gpu_model=gpu,
        unit_price=Decimal("9700"),
        currency="USD",
        quoted_on=D("2023-02-15"),
        note="",
    )
    with acting(reason="test"):
        assert services.prices_add_bulk(prices=[known, new]) == 1
    [record] = _records(PriceQuote, history_change_reason="test")
    assert record.id == PriceQuote.objects.get(unit_price=Decimal("9700")).pk


def test_price_imports_record_only_the_prices_inserted(tmp_path: Path) -> None:
    _check_prices(tmp_path)


@pytest.mark.postgres
def test_price_imports_on_postgres_record_only_the_prices_inserted(tmp_path: Path) -> None:
    _check_prices(tmp_path)


def _check_price_sync() -> None:
    lines = [OrderLineFactory(order__status="placed", unit_price=Decimal(p)) for p in "123"]
    PriceQuoteFactory(  # what the first line charged is recorded already
        vendor=lines[0].order.vendor,
        gpu_model=lines[0].gpu_model,
        unit_price=lines[0].unit_price,
        quoted_on=lines[0].order.placed_on,
    )
    assert order_line_prices_sync() == 2
    synced = _records(PriceQuote, history_change_reason__startswith="order_line_prices_sync")
    assert len(synced) == 2
    assert {r.id for r in synced} == set(
        PriceQuote.objects.filter(source="order").values_list("pk", flat=True)
    )
    assert order_line_prices_sync() == 0  # nothing new: no record
    assert len(_records(PriceQuote)) == 3


def test_the_price_sync_records_only_the_prices_it_added() -> None:
    _check_price_sync()


@pytest.mark.postgres
def test_the_price_sync_on_postgres_records_only_the_prices_it_added() -> None:
    _check_price_sync()


def _check_quotes_add_bulk() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    quotes = [
        DeliveryQuote(
            order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15") + timedelta(n)
        )
        for n in range(5)
    ]
    user = UserFactory(username="dana")
    with acting(user=user, reason="vendor portal sync"):
        services.quotes_add_bulk(quotes=quotes, check=False)
    records = _records(DeliveryQuote)
    assert [(r.id, r.history_type) for r in records] == [(q.pk, "+") for q in quotes]
    assert {(r.history_user_id, r.history_change_reason) for r in records} == {
        (user.pk, "vendor portal sync")
    }


def test_quotes_add_bulk_writes_one_record_per_quote() -> None:
    _check_quotes_add_bulk()


@pytest.mark.postgres
def test_quotes_add_bulk_by_copy_writes_one_record_per_quote() -> None:
    _check_quotes_add_bulk()


# --- The order's audit trail page ---------------------------------------------------------------


def _changed_order(changes: int) -> PurchaseOrder:
    """An order with a line, a quote, a receipt, an allocation, and `changes` changes."""
    user = UserFactory(username="erin")
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    line = OrderLineFactory(order=order, quantity=500)
    services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
    services.delivery_record(line=line, quantity=1, delivered_on=D("2023-05-15"))
    quota = QuotaFactory(gpu_model=line.gpu_model, gpus=1000)
    with acting(user=user):
        for n in range(changes):
            if n % 2:
                quotas.allocation_set(quota=quota, line=line, gpus=n + 1)
            else:
                line.quantity += 1
                line.save()
    return order


# The request's savepoint and its release (ATOMIC_REQUESTS), session, user, the order's
# existence (the admin's queryset), the order, five kinds of records, and the names of the
# vendors, GPU models, users and quotas they mention.
TRAIL_QUERIES = 15


@pytest.mark.parametrize("changes", [2, 20])
def test_the_trail_page_runs_the_same_queries_for_2_and_20_changes(
    admin_client_logged_in: Any, django_assert_num_queries: Any, changes: int
) -> None:
    order = _changed_order(changes)
    url = reverse("admin:orders_purchaseorder_history", args=[order.pk])
    with django_assert_num_queries(TRAIL_QUERIES):
        response = admin_client_logged_in.get(url)
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("quantity: 500 &rarr; 501") == 1
    assert page.count('class="audit-changed"') >= changes


def test_the_order_page_links_its_audit_trail_and_the_trail_downloads_as_csv(
    admin_client_logged_in: Any,
) -> None:
    order = _changed_order(2)
    page = admin_client_logged_in.get(_change_url(order)).content.decode()
    trail_url = reverse("admin:orders_purchaseorder_history", args=[order.pk])
    assert f'href="{trail_url}"' in page
    assert "Audit trail" in page

    response = admin_client_logged_in.get(
        reverse("admin:orders_purchaseorder_history_csv", args=[order.pk])
    )
    assert response.status_code == 200
    rows = list(csv.reader(StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == list(audit.HISTORY_COLUMNS)
    kinds = [(row[2], row[6]) for row in rows[1:]]
    assert kinds[0] == ("order", "created")  # oldest first
    assert {"line", "quote", "receipt", "allocation"} <= {kind for kind, _ in kinds}
    assert ["erin", "line", "changed", "quantity: 500 -> 501"] in [
        [row[1], row[2], row[6], row[7]] for row in rows[1:]
    ]


def test_only_users_who_can_view_the_order_see_its_trail(client: Any) -> None:
    order = _changed_order(2)
    urls = [
        reverse("admin:orders_purchaseorder_history", args=[order.pk]),
        reverse("admin:orders_purchaseorder_history_csv", args=[order.pk]),
    ]
    clerk = UserFactory(username="clerk", is_staff=True, role=NO_ROLE)
    client.force_login(clerk)
    for url in urls:  # no role: the order is not there for them (404), or not allowed (403)
        assert client.get(url).status_code in (403, 404), url
    clerk.user_permissions.add(Permission.objects.get(codename="view_purchaseorder"))
    for url in urls:
        assert client.get(url).status_code == 200, url
    missing = reverse("admin:orders_purchaseorder_history", args=[order.pk + 1000])
    assert client.get(missing).status_code == 404


# --- Export -------------------------------------------------------------------------------------


def _exported(tmp_path: Path, *args: str) -> list[list[str]]:
    path = tmp_path / "history.csv"
    call_command("export_history", "--output", str(path), *args, stdout=StringIO())
    return list(csv.reader(path.open(encoding="utf-8", newline="")))


def test_export_history_writes_who_when_what_and_why(tmp_path: Path) -> None:
    alice = UserFactory(username="alice")
    order = PurchaseOrderFactory(po_number="PO-X-1", placed_on=D("2023-04-14"))
    services.quote_add(
        order=order,
        quoted_on=D("2023-04-14"),
        delivery_date=D("2023-05-15"),
        note='=HYPERLINK("http://evil")',
        recorded_by=alice,
    )
    with acting(user=alice, reason="-moved by phone"):
        order.status = PurchaseOrder.Status.PLACED
        order.save()

    rows = _exported(tmp_path)
    assert rows[0] == list(audit.HISTORY_COLUMNS)
    by_kind = {(row[2], row[6]): row for row in rows[1:]}
    change = by_kind[("order", "changed")]
    assert change[1:] == [
        "alice",
        "order",
        str(order.pk),
        "PO-X-1",
        "PO-X-1",
        "changed",
        "status: Confirmed -> Placed",
        "'-moved by phone",  # formula-safe
    ]
    assert timezone.datetime.fromisoformat(change[0]) <= timezone.now()
    quote = by_kind[("quote", "created")]
    assert (quote[1], quote[5]) == ("alice", "PO-X-1")
    assert "note: =HYPERLINK" in quote[7]  # not at the start of the cell: harmless as text
    assert not any(cell.startswith(("=", "+", "-", "@")) for row in rows for cell in row)


def test_export_history_filters_by_model_and_date(tmp_path: Path) -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    line = OrderLineFactory(order=order)
    history_model(OrderLine).objects.update(history_date=timezone.now() - timedelta(days=10))
    line.quantity = 99
    line.save()

    assert [row[2] for row in _exported(tmp_path, "--model", "line")[1:]] == ["line", "line"]
    since = (timezone.localdate() - timedelta(days=1)).isoformat()
    recent = _exported(tmp_path, "--model", "line", "--since", since)[1:]
    # Only the change, still compared with the creation before the date.
    assert [(row[6], row[7]) for row in recent] == [("changed", "quantity: 8 -> 99")]
    assert len(_exported(tmp_path, "--model", "order", "--model", "line")) == 1 + 1 + 2


def test_export_history_runs_the_same_queries_whatever_its_size(tmp_path: Path) -> None:
    def queries() -> int:
        with CaptureQueriesContext(connection) as ctx:
            _exported(tmp_path)
        return len(ctx)

    _changed_order(2)
    few = queries()
    for _ in range(3):
        _changed_order(20)
    assert queries() == few


# --- Quotes stay append-only --------------------------------------------------------------------


def test_a_quote_cannot_be_reverted_or_edited_through_its_history(
    admin_client_logged_in: Any,
) -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    quote = services.quote_add(
        order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15")
    )
    record = _records(DeliveryQuote)[0]
    history_url = reverse("admin:orders_deliveryquote_history", args=[quote.pk])
    page = admin_client_logged_in.get(history_url).content.decode()
    assert "Revert" not in page
    form_url = reverse(
        "admin:orders_deliveryquote_simple_history", args=[quote.pk, record.history_id]
    )
    view = admin_client_logged_in.get(form_url)
    assert view.status_code == 200
    assert "Revert" not in view.content.decode()

    response = admin_client_logged_in.post(
        form_url, {"quoted_on": "2023-04-14", "delivery_date": "2030-01-01", "order": order.pk}
    )

    assert response.status_code == 405
    assert list(DeliveryQuote.objects.values_list("delivery_date", flat=True)) == [D("2023-05-15")]
    assert len(_records(DeliveryQuote)) == 1


@pytest.mark.parametrize("model_name", ["orderline", "delivery", "pricequote", "allocation"])
def test_no_audited_object_can_be_reverted_through_its_history(
    admin_client_logged_in: Any, model_name: str
) -> None:
    line = OrderLineFactory(quantity=10)
    objects = {
        "orderline": line,
        "delivery": services.delivery_record(line=line, quantity=1, delivered_on=D("2023-05-15")),
        "pricequote": PriceQuoteFactory(),
        "allocation": quotas.allocation_set(
            quota=QuotaFactory(gpu_model=line.gpu_model), line=line, gpus=2
        ),
    }
    obj = objects[model_name]
    record = history_model(type(obj)).objects.filter(id=obj.pk).latest("history_id")
    url = reverse(f"admin:orders_{model_name}_simple_history", args=[obj.pk, record.history_id])
    before = history_model(type(obj)).objects.count()
    assert admin_client_logged_in.post(url, {}).status_code == 405
    assert history_model(type(obj)).objects.count() == before
