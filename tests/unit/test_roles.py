"""Roles and object-level permissions: log in as each role and check what every admin list,
change page, dashboard page and CSV export contains; an order the user may not see gives
404 with none of its data, one they may only see opens read-only and refuses a POST."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass
from datetime import date
from html.parser import HTMLParser
from io import StringIO
from types import SimpleNamespace
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management import CommandError, call_command
from django.db import connection
from django.db.migrations.loader import MigrationLoader
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import alerts, notifications, permissions, services
from orders.alerts import order_recipients
from orders.models import (
    AlertNotice,
    Allocation,
    Delivery,
    DeliveryQuote,
    OrderLine,
    PurchaseOrder,
    SlipAlert,
)
from orders.permissions import Scope
from orders.quotas import allocation_set
from orders.roles import GROUP_NAMES, ROLE_PERMISSIONS, Role, role_grant, role_of
from tests.factories import (
    NO_ROLE,
    GpuModelFactory,
    OrderLineFactory,
    PurchaseOrderFactory,
    QuotaFactory,
    TeamFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db

D = date.fromisoformat
OWN, WATCHED, OTHER = "PO-OWN", "PO-WATCHED", "PO-OTHER"
EVERY = {OWN, WATCHED, OTHER}
PO = re.compile(r"PO-(?:OWN|WATCHED|OTHER)\b")


@dataclass
class World:
    """Bea buys OWN and watches WATCHED; Otto buys WATCHED and OTHER. Each order has a line,
    a slipping quote history with alerts, a receipt and GPUs allocated to a team."""

    bea: Any
    otto: Any
    manager: Any
    viewer: Any
    nobody: Any  # staff, but no role
    orders: dict[str, PurchaseOrder]

    def order(self, po: str) -> PurchaseOrder:
        return self.orders[po]


def _order(po: str, buyer: Any, vendor: Any, gpu: Any, quota: Any) -> PurchaseOrder:
    order = PurchaseOrderFactory(
        po_number=po, buyer=buyer, vendor=vendor, placed_on=D("2023-04-14"), need_by=D("2023-09-30")
    )
    line = OrderLineFactory(order=order, gpu_model=gpu, quantity=8)
    services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
    services.quote_add(order=order, quoted_on=D("2023-06-01"), delivery_date=D("2023-12-15"))
    services.delivery_record(line=line, quantity=1, delivered_on=D("2023-06-02"))
    allocation_set(quota=quota, line=line, gpus=2)
    return order


def _world() -> World:
    bea = UserFactory(username="bea", first_name="Bea", is_staff=True)
    otto = UserFactory(username="otto", first_name="Otto", is_staff=True)
    vendor, gpu = VendorFactory(name="Pacific Silicon"), GpuModelFactory()
    quota = QuotaFactory(team=TeamFactory(name="LLM", lead=otto), gpu_model=gpu)
    orders = {
        OWN: _order(OWN, bea, vendor, gpu, quota),
        WATCHED: _order(WATCHED, otto, vendor, gpu, quota),
        OTHER: _order(OTHER, otto, vendor, gpu, quota),
    }
    orders[WATCHED].watchers.add(bea)
    alerts.scan_orders(today=D("2023-07-21"))
    assert SlipAlert.objects.filter(order__po_number=OTHER).exists()
    return World(
        bea=bea,
        otto=otto,
        manager=UserFactory(username="max", is_staff=True, role=Role.PROCUREMENT_MANAGER),
        viewer=UserFactory(username="vic", is_staff=True, role=Role.VIEWER),
        nobody=UserFactory(username="nora", is_staff=True, role=NO_ROLE),
        orders=orders,
    )


@pytest.fixture
def w() -> World:
    return _world()


@pytest.fixture(params=[True, False], ids=["buyers-see-all", "buyers-see-own"])
def see_all(request: Any, settings: Any) -> bool:
    settings.BUYERS_SEE_ALL_ORDERS = request.param
    return request.param


def _visible_to_bea(see_all: bool) -> set[str]:
    return EVERY if see_all else {OWN, WATCHED}


# --- The one definition -------------------------------------------------------------------------


def _pos(queryset: Any) -> set[str]:
    return set(queryset.values_list("po_number", flat=True))


def test_what_each_role_sees_and_changes(w: World, see_all: bool, admin_user: Any) -> None:
    everything = PurchaseOrder.objects.all()
    assert _pos(everything.visible_to(w.bea)) == _visible_to_bea(see_all)
    assert _pos(everything.editable_by(w.bea)) == {OWN, WATCHED}
    assert _pos(everything.editable_by(w.otto)) == {WATCHED, OTHER}
    for user in (w.manager, admin_user):
        assert _pos(everything.visible_to(user)) == EVERY
        assert _pos(everything.editable_by(user)) == EVERY
    assert _pos(everything.visible_to(w.viewer)) == EVERY
    assert _pos(everything.editable_by(w.viewer)) == set()
    assert _pos(everything.visible_to(w.nobody)) == set()
    assert _pos(everything.editable_by(w.nobody)) == set()

    w.bea.is_active = False
    assert permissions.view_scope(w.bea) is Scope.NONE
    assert _pos(everything.visible_to(w.bea)) == set()


def test_object_checks_agree_with_the_querysets(w: World, see_all: bool) -> None:
    for user in (w.bea, w.otto, w.manager, w.viewer, w.nobody):
        visible = _pos(PurchaseOrder.objects.visible_to(user))
        editable = _pos(PurchaseOrder.objects.editable_by(user))
        for po, order in w.orders.items():
            assert permissions.can_view_order(user, order.pk) == (po in visible), (user, po)
            assert permissions.can_change_order(user, order.pk) == (po in editable), (user, po)


def test_the_recipient_set_is_the_view_scope_in_set_form(w: World, admin_user: Any) -> None:
    inactive = UserFactory(username="ina", is_active=False)
    users = [w.bea, w.otto, w.manager, w.viewer, w.nobody, inactive, admin_user]
    in_set = set(permissions.users_who_see_their_orders().values_list("pk", flat=True))
    for user in users:
        assert (user.pk in in_set) == (permissions.view_scope(user) is not Scope.NONE), user


def test_the_order_filter_for_pairs_is_can_view_order_in_set_form(
    w: World, see_all: bool, admin_user: Any
) -> None:
    """may_see_order_q, on rows that each name a user and an order (notices, here), keeps
    exactly the pairs can_view_order allows."""
    inactive = UserFactory(username="ina", is_active=False)
    users = [w.bea, w.otto, w.manager, w.viewer, w.nobody, inactive, admin_user]
    first_alerts = {order.pk: order.alerts.order_by("pk").first() for order in w.orders.values()}
    AlertNotice.objects.bulk_create(
        AlertNotice(alert=alert, recipient=user, recipient_email=user.email or "x@example.com")
        for alert in first_alerts.values()
        for user in users
    )
    kept = set(
        AlertNotice.objects.filter(
            permissions.may_see_order_q(user_path="recipient", order_path="alert__order")
        ).values_list("recipient_id", "alert__order_id")
    )
    expected = {
        (user.pk, order_id)
        for user in users
        for order_id in first_alerts
        if permissions.can_view_order(user, order_id)
    }
    assert kept == expected
    assert ((w.bea.pk, w.orders[OTHER].pk) in kept) == see_all
    assert (w.bea.pk, w.orders[WATCHED].pk) in kept


# --- Admin lists ------------------------------------------------------------------------------

CHANGELISTS = {
    "orders": "admin:orders_purchaseorder_changelist",
    "lines": "admin:orders_orderline_changelist",
    "quotes": "admin:orders_deliveryquote_changelist",
    "receipts": "admin:orders_delivery_changelist",
    "alerts": "admin:orders_slipalert_changelist",
    "allocations": "admin:orders_allocation_changelist",
}


def _listed(client: Any, name: str) -> set[str]:
    response = client.get(reverse(CHANGELISTS[name]))
    assert response.status_code == 200, name
    return set(PO.findall(response.content.decode()))


@pytest.mark.parametrize("name", CHANGELISTS)
def test_admin_lists_per_role(client: Any, w: World, see_all: bool, name: str) -> None:
    client.force_login(w.bea)
    assert _listed(client, name) == _visible_to_bea(see_all)
    for user in (w.manager, w.viewer):
        client.force_login(user)
        assert _listed(client, name) == EVERY
    client.force_login(w.nobody)
    assert client.get(reverse(CHANGELISTS[name])).status_code == 403


def test_only_managers_acknowledge_alerts(client: Any, w: World) -> None:
    url = reverse(CHANGELISTS["alerts"])
    ids = list(SlipAlert.objects.values_list("pk", flat=True))
    action = {"action": "acknowledge", "_selected_action": ids, "index": "0"}
    for user in (w.bea, w.viewer):
        client.force_login(user)
        assert client.get(url).context["action_form"] is None  # no action at all
        client.post(url, action)
        assert not SlipAlert.objects.filter(acknowledged_at__isnull=False).exists()
    client.force_login(w.manager)
    form = client.get(url).context["action_form"]
    assert "acknowledge" in dict(form.fields["action"].choices)
    assert client.post(url, action).status_code == 302
    assert SlipAlert.objects.filter(acknowledged_by=w.manager).count() == len(ids)


def _suggested(client: Any, model: str, field: str) -> set[str]:
    params = {"app_label": "orders", "model_name": model, "field_name": field, "term": "PO"}
    response = client.get("/admin/autocomplete/", params)
    assert response.status_code == 200
    return set(PO.findall(" ".join(r["text"] for r in response.json()["results"])))


def test_autocomplete_suggests_orders_the_user_may_add_to(
    client: Any, w: World, see_all: bool
) -> None:
    client.force_login(w.bea)
    assert _suggested(client, "deliveryquote", "order") == {OWN, WATCHED}
    assert _suggested(client, "delivery", "line") == {OWN, WATCHED}
    client.force_login(w.manager)
    assert _suggested(client, "deliveryquote", "order") == EVERY
    assert _suggested(client, "allocation", "line") == EVERY


@pytest.mark.parametrize("name", ["orders", "lines", "quotes", "alerts", "allocations"])
def test_restricted_lists_run_a_fixed_number_of_queries(
    client: Any, w: World, settings: Any, django_assert_num_queries: Any, name: str
) -> None:
    settings.BUYERS_SEE_ALL_ORDERS = False
    client.force_login(w.bea)
    url = reverse(CHANGELISTS[name])
    with CaptureQueriesContext(connection) as small:
        assert client.get(url).status_code == 200
    vendor, gpu = VendorFactory(), GpuModelFactory()
    quota = QuotaFactory(team=TeamFactory(name="More"), gpu_model=gpu)
    for i in range(6):  # hers, watched and others'
        order = _order(f"PO-MORE-{i}", w.bea if i % 3 == 0 else w.otto, vendor, gpu, quota)
        if i % 3 == 1:
            order.watchers.add(w.bea)
    alerts.scan_orders(today=D("2023-07-21"))
    with django_assert_num_queries(len(small.captured_queries)):
        response = client.get(url)
    assert response.status_code == 200
    assert len(set(re.findall(r"PO-MORE-\d", response.content.decode()))) == 4


# --- Change pages -----------------------------------------------------------------------------


class _FormData(HTMLParser):
    """What a browser would submit from a page's <form id=...>, unchanged."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id, self.inside, self.data = form_id, False, []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "disabled" in a:
            return
        if tag == "input" and a.get("name") and a.get("type") not in ("submit", "button"):
            if a.get("type") in ("checkbox", "radio") and "checked" not in a:
                return
            self.data.append((a["name"], a.get("value", "")))
        elif tag == "select":
            self._select = a.get("name")
        elif tag == "option" and self._select and "selected" in a:
            self.data.append((self._select, a.get("value", "")))
        elif tag == "textarea":
            self._textarea = a.get("name")
            self.data.append((self._textarea, ""))

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None
        elif tag == "form":
            self.inside = False

    def handle_data(self, data: str) -> None:
        if self._textarea:
            name, value = self.data.pop()
            self.data.append((name, value + data.lstrip("\n")))


def _form_data(html: str, form_id: str) -> dict[str, Any]:
    parser = _FormData(form_id)
    parser.feed(html)
    data: dict[str, Any] = {}
    for name, value in parser.data:
        data.setdefault(name, []).append(value)
    return {k: v if len(v) > 1 else v[0] for k, v in data.items()}


def _change_url(obj: Any) -> str:
    return reverse(f"admin:orders_{obj._meta.model_name}_change", args=[obj.pk])


def _objects_of(order: PurchaseOrder) -> list[Any]:
    """The order and everything of it that has its own admin page."""
    return [
        order,
        OrderLine.objects.get(order=order),
        DeliveryQuote.objects.filter(order=order).first(),
        Delivery.objects.get(order=order),
        SlipAlert.objects.filter(order=order).first(),
        Allocation.objects.get(line__order=order),
    ]


def test_an_order_the_buyer_may_not_see_is_404_everywhere(
    client: Any, w: World, settings: Any
) -> None:
    settings.BUYERS_SEE_ALL_ORDERS = False
    client.force_login(w.bea)
    for obj in _objects_of(w.order(OTHER)):
        url = _change_url(obj)
        delete = url.replace("/change/", "/delete/")
        for method, target, expected in (
            (client.get, url, {404}),
            (client.get, url.replace("/change/", "/history/"), {404}),
            # Where the user may change or delete no such object at all (quotes are
            # history; buyers delete no orders) Django answers 403 before looking.
            (client.post, url, {403, 404}),
            (client.get, delete, {403, 404}),
            (client.post, delete, {403, 404}),
        ):
            response = method(target, {"notes": "mine now", "post": "yes"})
            assert response.status_code in expected, (target, response.status_code)
            assert OTHER not in response.content.decode()
    timeline = client.get(reverse("orders:order_timeline", args=[w.order(OTHER).pk]))
    assert timeline.status_code == 404
    assert OTHER not in timeline.content.decode()
    assert Delivery.objects.filter(order=w.order(OTHER)).exists()
    move = reverse("admin:orders_allocation_move", args=[_objects_of(w.order(OTHER))[-1].pk])
    client.force_login(w.manager)
    assert client.get(move).status_code == 200
    client.force_login(w.bea)
    assert client.get(move).status_code == 404


def test_an_order_the_buyer_only_sees_is_read_only(client: Any, w: World, settings: Any) -> None:
    settings.BUYERS_SEE_ALL_ORDERS = True
    other = w.order(OTHER)
    client.force_login(w.manager)
    url = _change_url(other)
    editable = client.get(url).content.decode()
    assert 'name="_save"' in editable
    data = _form_data(editable, "purchaseorder_form") | {"notes": "changed by a buyer"}

    for user in (w.bea, w.viewer):
        client.force_login(user)
        page = client.get(url)
        assert page.status_code == 200
        html = page.content.decode()
        assert OTHER in html
        assert 'name="_save"' not in html
        assert 'name="_continue"' not in html
        for inline in page.context["inline_admin_formsets"]:
            assert not inline.has_add_permission, inline.opts
            assert not inline.has_change_permission, inline.opts
            assert not inline.has_delete_permission, inline.opts
        assert client.post(url, data).status_code == 403
        for obj in _objects_of(other)[1:]:
            response = client.get(_change_url(obj))
            assert response.status_code == 200, obj
            assert 'name="_save"' not in response.content.decode(), obj
    other.refresh_from_db()
    assert other.notes == ""


def test_a_buyer_edits_own_and_watched_orders(client: Any, w: World, see_all: bool) -> None:
    client.force_login(w.bea)
    for po in (OWN, WATCHED):
        url = _change_url(w.order(po))
        html = client.get(url).content.decode()
        assert 'name="_save"' in html
        data = _form_data(html, "purchaseorder_form") | {"notes": f"{po} checked", "_save": "1"}
        response = client.post(url, data)
        assert response.status_code == 302, response.content.decode()[:2000]
        w.order(po).refresh_from_db()
        assert w.order(po).notes == f"{po} checked"


def test_a_buyer_adds_quotes_to_own_orders_only(client: Any, w: World, see_all: bool) -> None:
    client.force_login(w.bea)
    url = reverse("admin:orders_deliveryquote_add")
    for po, allowed in ((OWN, True), (WATCHED, True), (OTHER, False)):
        before = DeliveryQuote.objects.filter(order=w.order(po)).count()
        response = client.post(
            url,
            {
                "order": w.order(po).pk,
                "quoted_on": "2023-07-01",
                "delivery_date": "2024-01-31",
                "note": "",
                "source": "email",
            },
        )
        after = DeliveryQuote.objects.filter(order=w.order(po)).count()
        assert (after == before + 1) is allowed, po
        assert response.status_code == (302 if allowed else 200), po


def test_a_buyer_cannot_delete_lines_of_orders_they_only_see(
    client: Any, w: World, settings: Any
) -> None:
    settings.BUYERS_SEE_ALL_ORDERS = True
    client.force_login(w.bea)
    line = OrderLine.objects.get(order=w.order(OTHER))
    Allocation.objects.filter(line=line).delete()  # so only the permission stands in the way
    response = client.post(
        reverse(CHANGELISTS["lines"]),
        {"action": "delete_selected", "_selected_action": [line.pk], "post": "yes"},
    )
    assert response.status_code == 403
    assert OrderLine.objects.filter(pk=line.pk).exists()


def test_a_manager_changes_any_order(client: Any, w: World) -> None:
    client.force_login(w.manager)
    url = _change_url(w.order(OTHER))
    data = _form_data(client.get(url).content.decode(), "purchaseorder_form")
    response = client.post(url, data | {"notes": "chased the vendor", "_save": "1"})
    assert response.status_code == 302
    assert PurchaseOrder.objects.get(po_number=OTHER).notes == "chased the vendor"


# --- Exports ----------------------------------------------------------------------------------

EXPORT = reverse("admin:orders_purchaseorder_export_csv")
EXPORT_QUOTES = reverse("admin:orders_purchaseorder_export_quotes_csv")


def _csv_pos(response: Any) -> set[str]:
    assert response.status_code == 200
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    return {row["po_number"] for row in rows}


def test_every_export_holds_what_the_user_may_see(client: Any, w: World, see_all: bool) -> None:
    ids = [order.pk for order in w.orders.values()]
    action = {"action": "export_selected_orders_csv", "_selected_action": ids}
    expected = {w.bea: _visible_to_bea(see_all), w.manager: EVERY, w.viewer: EVERY}
    for user, pos in expected.items():
        client.force_login(user)
        assert _csv_pos(client.get(EXPORT)) == pos
        assert _csv_pos(client.get(EXPORT_QUOTES)) == pos
        # Ids of orders the user may not see are ignored, as ids of no order would be.
        assert _csv_pos(client.post(reverse(CHANGELISTS["orders"]), action)) == pos
        assert _csv_pos(client.get(reverse("orders:dashboard_csv"), {"buyer": ""})) == pos

    client.force_login(w.nobody)
    for url in (EXPORT, EXPORT_QUOTES, reverse("orders:dashboard_csv")):
        response = client.get(url)
        assert response.status_code == 403, url
        assert b"PO-" not in response.content


# --- Dashboard and reports --------------------------------------------------------------------


def _dashboard(client: Any) -> tuple[set[str], int]:
    response = client.get(reverse("orders:dashboard"), {"buyer": ""})
    assert response.status_code == 200
    counted = sum(row.alerts for row in response.context["alerts"].rows)
    return {o.po_number for o in response.context["orders"]}, counted


def test_the_dashboard_lists_and_counts_what_the_user_may_see(
    client: Any, w: World, see_all: bool
) -> None:
    def alerts_on(pos: set[str]) -> int:
        return SlipAlert.objects.filter(order__po_number__in=pos).count()

    for user, pos in ((w.bea, _visible_to_bea(see_all)), (w.viewer, EVERY), (w.manager, EVERY)):
        client.force_login(user)
        assert _dashboard(client) == (pos, alerts_on(pos))
        html = client.get(reverse("orders:dashboard"), {"buyer": ""}).content.decode()
        assert set(PO.findall(html)) == pos
        for po in pos:
            url = reverse("orders:order_timeline", args=[w.order(po).pk])
            assert client.get(url).status_code == 200
    # The buyer filter offers only buyers of orders the user may see.
    client.force_login(w.bea)
    choices = client.get(reverse("orders:dashboard")).context["form"].fields["buyer"].queryset
    assert set(choices) == {w.bea, w.otto}  # Otto buys WATCHED


def test_the_aggregate_pages_are_the_same_for_every_role(client: Any, w: World) -> None:
    """Lead times, prices and vendor scorecards are about vendors and the market, over every
    order, and name no order: the same for each role (README: Roles)."""
    pages = ["orders:lead_times", "orders:prices", "orders:vendors"]
    seen = {}
    for user in (w.bea, w.viewer, w.manager):
        client.force_login(user)
        for name in pages:
            response = client.get(reverse(name))
            assert response.status_code == 200
            assert not PO.findall(response.content.decode())
            # Less what names the user: their name and the logout form's CSRF token.
            html = re.sub(r'<span class="who">.*?</span>', "", response.content.decode())
            seen.setdefault(name, []).append(
                re.sub(r'name="csrfmiddlewaretoken" value="[^"]*"', "", html)
            )
    for name, htmls in seen.items():
        assert htmls[0] == htmls[1] == htmls[2], name


def test_budget_exposure_counts_the_orders_the_user_may_see(
    client: Any, w: World, settings: Any
) -> None:
    settings.BUYERS_SEE_ALL_ORDERS = False
    url = reverse("admin:orders_exposure")
    for user, gpus in ((w.bea, 16), (w.manager, 24), (w.viewer, 24)):
        client.force_login(user)
        response = client.get(url)
        assert response.status_code == 200
        by_buyer = response.context["reports"][2]
        assert sum(row.units for row in by_buyer.rows) == gpus, user


def test_quota_usage_lists_allocations_of_visible_orders(
    client: Any, w: World, settings: Any
) -> None:
    settings.BUYERS_SEE_ALL_ORDERS = False
    url = reverse("admin:orders_quota_usage")
    client.force_login(w.bea)
    html = client.get(url).content.decode()
    assert set(PO.findall(html)) == {OWN, WATCHED}
    client.force_login(w.viewer)
    assert set(PO.findall(client.get(url).content.decode())) == EVERY


# --- Who is emailed ---------------------------------------------------------------------------


def test_recipients_are_buyers_and_watchers_who_may_still_see_the_order(
    w: World, admin_user: Any
) -> None:
    watched = w.order(WATCHED)
    inactive = UserFactory(username="ina", is_active=False)
    no_address = UserFactory(username="nemo", email="")
    admin_user.email = "root@example.com"
    admin_user.save()
    watched.watchers.add(w.viewer, w.nobody, inactive, no_address, admin_user)

    def names(order: PurchaseOrder) -> set[str]:
        ids = {user_id for user_id, _ in order_recipients([order.pk]).get(order.pk, [])}
        return set(get_user_model().objects.filter(pk__in=ids).values_list("username", flat=True))

    assert names(watched) == {"otto", "bea", "vic", admin_user.username}
    role_grant(user=w.bea, role=None)  # Bea lost her role: she sees nothing now
    assert names(watched) == {"otto", "vic", admin_user.username}
    assert names(w.order(OWN)) == set()


@pytest.mark.parametrize("n_orders", [3, 30])
def test_recipients_take_two_queries_whatever_the_number_of_orders(
    w: World, django_assert_num_queries: Any, n_orders: int
) -> None:
    orders = [PurchaseOrderFactory(buyer=w.bea) for _ in range(n_orders)]
    for order in orders:
        order.watchers.add(w.otto, w.nobody)
    with django_assert_num_queries(2):
        found = order_recipients([o.pk for o in orders])
    assert {len(users) for users in found.values()} == {2}


def test_a_digest_skips_a_watcher_who_lost_their_role(w: World) -> None:
    services.quote_add(
        order=w.order(WATCHED), quoted_on=D("2023-07-22"), delivery_date=D("2024-03-01")
    )
    alerts.scan_orders(today=D("2023-07-22"))
    alerts.alert_notices_create()
    pending = AlertNotice.objects.filter(email__isnull=True, skipped_reason="")
    assert pending.filter(recipient=w.bea).exists()
    role_grant(user=w.bea, role=None)

    notifications.build_digests()

    skipped = AlertNotice.objects.filter(recipient=w.bea, alert__order=w.order(WATCHED))
    assert set(skipped.values_list("skipped_reason", flat=True)) == {
        notifications.SKIPPED_NO_ACCESS
    }
    recipients = set(
        AlertNotice.objects.exclude(email=None).values_list("email__recipient_email", flat=True)
    )
    assert w.bea.email not in recipients
    assert w.otto.email in recipients


# --- The groups, their migration, and granting a role -------------------------------------------


def _group_permissions() -> dict[str, set[str]]:
    return {
        group.name: {f"{p.content_type.app_label}.{p.codename}" for p in group.permissions.all()}
        for group in Group.objects.prefetch_related("permissions__content_type")
    }


def test_the_migration_made_the_groups_as_roles_defines_them() -> None:
    groups = _group_permissions()
    for role in Role:
        assert groups[role.group_name] == set(ROLE_PERMISSIONS[role]), role


def test_the_migration_is_idempotent_and_makes_buyers_and_watchers_buyers(
    admin_user: Any,
) -> None:
    migration = MigrationLoader(connection).get_migration(
        "orders", "0008_roles_buyer_manager_viewer"
    )
    create_roles = migration.operations[-1].code
    state = MigrationLoader(connection).project_state(("orders", "0008_roles_buyer_manager_viewer"))
    buyer = UserFactory(username="old-buyer", role=NO_ROLE)
    watcher = UserFactory(username="old-watcher", role=NO_ROLE)
    viewer = UserFactory(username="old-viewer", role=Role.VIEWER)
    bystander = UserFactory(username="bystander", role=NO_ROLE)
    order = PurchaseOrderFactory(buyer=buyer)
    order.watchers.add(watcher, viewer, admin_user)
    before = _group_permissions()

    for _ in range(2):
        create_roles(state.apps, SimpleNamespace(connection=connection))

    assert _group_permissions() == before
    assert Group.objects.filter(name__in=GROUP_NAMES.values()).count() == 3
    assert role_of(buyer) is role_of(watcher) is Role.BUYER
    assert role_of(viewer) is Role.VIEWER  # already had a role: kept
    assert role_of(bystander) is None
    assert not admin_user.groups.exists()  # superusers need none


def test_grant_role_by_email(w: World) -> None:
    user = UserFactory(username="newbie", email="New.Bie@example.com", role=NO_ROLE)
    out = StringIO()
    call_command("grant_role", "new.bie@example.com", "viewer", stdout=out)
    assert out.getvalue() == "newbie <New.Bie@example.com>: none -> viewer\n"
    user.refresh_from_db()
    assert role_of(user) is Role.VIEWER
    assert user.is_staff

    call_command("grant_role", "newbie", "procurement-manager", stdout=StringIO())
    assert list(user.groups.values_list("name", flat=True)) == ["Procurement manager"]
    call_command("grant_role", "newbie", "none", stdout=StringIO())
    assert role_of(user) is None

    with pytest.raises(CommandError, match="No user"):
        call_command("grant_role", "nobody@example.com", "buyer")
    UserFactory(username="twin1", email="twin@example.com")
    UserFactory(username="twin2", email="TWIN@example.com")
    with pytest.raises(CommandError, match="Several users"):
        call_command("grant_role", "twin@example.com", "buyer")
    with pytest.raises(CommandError):
        call_command("grant_role", "newbie", "admin")


def test_grant_role_recreates_a_deleted_group() -> None:
    Group.objects.filter(name="Viewer").delete()
    user = UserFactory(username="late", role=NO_ROLE)
    role_grant(user=user, role=Role.VIEWER)
    assert _group_permissions()["Viewer"] == set(ROLE_PERMISSIONS[Role.VIEWER])
    assert user.has_perm("orders.view_all_purchaseorders")
