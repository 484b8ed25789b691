"""The role matrix: with BUYERS_SEE_ALL_ORDERS false, every page, CSV download and JSON
endpoint the project serves, requested by one buyer, holds nothing of another buyer's order:
not its PO number, not its price in any format, and no figure it could be read off.

The list of endpoints is not written by hand: it is every URL pattern the resolver knows (the
admin's for every registered model included), so a new endpoint is tested as soon as it
exists, and fails here until it is given a way to be requested (ADMIN_ROUTES or CUSTOM)."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from functools import partial
from typing import Any

import pytest
from django.contrib import admin
from django.contrib.admin.options import InlineModelAdmin
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from simple_history.admin import SimpleHistoryAdmin

from orders import alerts, notifications, permissions, prices, services
from orders.models import Allocation, PriceAlert, PriceQuote, PurchaseOrder
from orders.quotas import allocation_set
from orders.roles import Role
from orders.scorecards import price_change_by_vendor
from tests.factories import (
    NO_ROLE,
    GpuModelFactory,
    OrderLineFactory,
    PriceQuoteFactory,
    PurchaseOrderFactory,
    QuotaFactory,
    TeamFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db

D = date.fromisoformat
ANN_PO, BEN_PO, BEN_TWIN_PO = "PO-ANN-7001", "PO-BEN-9002", "PO-BEN-9003"
ANN_PRICE, BEN_PRICE = Decimal("31337.77"), Decimal("42424.42")
MARKET_PRICE = Decimal("10000.00")
GPUS = 8

# Ben's orders in any spelling: their PO numbers; its unit price as typed, rounded, with
# thousands separators or a space (42424.42, 42,424.42, 42424.4, 42 424); his line's total
# (8 x 42424.42 = 339,395.36), which the budget exposure would show as a replacement cost;
# and his price's rise over the market low (+324.2%), from which the price follows.
BEN_LEAKS = re.compile(
    r"PO-BEN-900\d|42[,.\s\u00a0]?424|339[,.\s\u00a0]?395|\+?324\.2", re.IGNORECASE
)
ANN_SEES = re.compile(r"31[,.\s\u00a0]?337\.77")


@dataclass
class World:
    """Ann and Ben are Buyers with an order each at the same vendor for the same GPU model,
    each with quotes that slip (slip alerts), a receipt, GPUs allocated to a team, and its
    price recorded as a price charged on an order. The market price quoted before both is
    10,000.00; Ben's order is the later, so his price is that history's latest and raises a
    price alert. Another vendor's own price sheet raises one that names no order. Ben was
    also charged Ann's price on her order's day (PO-BEN-9003): one price, charged on both,
    whose note names his order."""

    ann: Any
    ben: Any
    ann_order: PurchaseOrder
    ben_order: PurchaseOrder


def _order(po: str, buyer: Any, vendor: Any, gpu: Any, quota: Any, **kwargs: Any) -> Any:
    placed_on, unit_price = kwargs["placed_on"], kwargs["unit_price"]
    order = PurchaseOrderFactory(
        po_number=po, buyer=buyer, vendor=vendor, placed_on=placed_on, need_by=D("2023-09-30")
    )
    line = OrderLineFactory(order=order, gpu_model=gpu, quantity=GPUS, unit_price=unit_price)
    services.quote_add(order=order, quoted_on=placed_on, delivery_date=D("2023-05-25"))
    services.quote_add(order=order, quoted_on=D("2023-06-01"), delivery_date=D("2023-12-15"))
    services.delivery_record(line=line, quantity=1, delivered_on=D("2023-06-02"))
    allocation_set(quota=quota, line=line, gpus=2)
    return order


def _world() -> World:
    ann = UserFactory(username="ann", first_name="Ann", is_staff=True, role=Role.BUYER)
    ben = UserFactory(username="ben", first_name="Ben", is_staff=True, role=Role.BUYER)
    vendor, gpu = VendorFactory(name="Pacific Silicon"), GpuModelFactory()
    quota = QuotaFactory(team=TeamFactory(name="LLM", lead=ben), gpu_model=gpu)
    PriceQuoteFactory(
        vendor=vendor, gpu_model=gpu, unit_price=MARKET_PRICE, quoted_on=D("2023-01-10")
    )
    sheet_vendor = VendorFactory(name="Atlas Compute")
    for day, price in (("2023-01-10", "10000.00"), ("2023-03-02", "15000.00")):
        PriceQuoteFactory(
            vendor=sheet_vendor, gpu_model=gpu, unit_price=Decimal(price), quoted_on=D(day)
        )
    # Charged what Ann was, on the same day: one price, recorded from his order first.
    twin = PurchaseOrderFactory(po_number=BEN_TWIN_PO, buyer=ben, vendor=vendor)
    OrderLineFactory(order=twin, gpu_model=gpu, unit_price=ANN_PRICE)
    prices.order_line_prices_sync()
    ann_order = _order(
        ANN_PO, ann, vendor, gpu, quota, placed_on=D("2023-04-14"), unit_price=ANN_PRICE
    )
    ben_order = _order(
        BEN_PO, ben, vendor, gpu, quota, placed_on=D("2023-04-20"), unit_price=BEN_PRICE
    )
    alerts.scan_orders(today=D("2023-07-21"))
    prices.scan_prices()
    assert PriceQuote.objects.filter(unit_price=BEN_PRICE, source=PriceQuote.Source.ORDER).exists()
    assert PriceAlert.objects.filter(price__unit_price=BEN_PRICE).exists()
    return World(ann=ann, ben=ben, ann_order=ann_order, ben_order=ben_order)


@pytest.fixture
def w(settings: Any) -> World:
    settings.BUYERS_SEE_ALL_ORDERS = False
    return _world()


# --- Every URL pattern -------------------------------------------------------------------------


def _walk(patterns: list[Any], prefix: str = "", namespace: str = "") -> Iterator[tuple[str, str]]:
    """(key, route) of every URL pattern: the key is the pattern's name with its namespace,
    or for an unnamed one its route in angle brackets."""
    for pattern in patterns:
        if isinstance(pattern, URLResolver):
            inner = f"{namespace}{pattern.namespace}:" if pattern.namespace else namespace
            yield from _walk(pattern.url_patterns, prefix + str(pattern.pattern), inner)
        elif isinstance(pattern, URLPattern):
            route = prefix + str(pattern.pattern)
            yield (f"{namespace}{pattern.name}" if pattern.name else f"<{route}>"), route


ENDPOINTS = sorted({key for key, _ in _walk(get_resolver().url_patterns)})

Requests = Iterator[tuple[str, Any]]  # (what was asked, the response)


def _get(client: Client, url: str, params: dict[str, Any] | None = None) -> tuple[str, Any]:
    return f"GET {url} {params or ''}", client.get(url, params or {})


# --- The admin's pages for each registered model ----------------------------------------------

# Searches that find Ben's order or price (a page may repeat the search term, so none is
# spelt as BEN_LEAKS would find it).
SEARCHES = ["", "4242", "BEN-9002", "9002", "ben"]
MISSING_PK = 987654


def _pks(model: type[models.Model]) -> list[Any]:
    return list(model._default_manager.order_by("pk").values_list("pk", flat=True))


def _info(model: type[models.Model]) -> str:
    return f"{model._meta.app_label}_{model._meta.model_name}"


def _changelist(model: type[models.Model], client: Client, w: World) -> Requests:
    model_admin = admin.site._registry[model]
    url = reverse(f"admin:{_info(model)}_changelist")
    asked, response = _get(client, url)
    yield asked, response
    for term in SEARCHES[1:]:
        yield _get(client, url, {"q": term})
    if model_admin.date_hierarchy:
        field = model_admin.date_hierarchy
        yield _get(client, url, {f"{field}__year": 2023, f"{field}__month": 4})
    if response.status_code != 200:
        return
    changelist = response.context["cl"]
    for spec in changelist.filter_specs:  # every choice of every filter
        for choice in spec.choices(changelist):
            yield _get(client, url + choice["query_string"])
    action_form = response.context.get("action_form")
    if action_form is not None:  # every action on every row, the other buyer's included
        for action, _ in action_form.fields["action"].choices:
            if action:
                data = {"action": action, "_selected_action": _pks(model), "index": 0}
                yield f"POST {url} {action}", client.post(url, data)


def _add(model: type[models.Model], client: Client, w: World) -> Requests:
    yield _get(client, reverse(f"admin:{_info(model)}_add"))


def _per_row(model: type[models.Model], view: str, client: Client, w: World) -> Requests:
    for pk in [*_pks(model), MISSING_PK]:
        if view == "redirect":  # the unnamed <id>/ that redirects to <id>/change/
            yield _get(client, f"/admin/{model._meta.app_label}/{model._meta.model_name}/{pk}/")
        else:
            yield _get(client, reverse(f"admin:{_info(model)}_{view}", args=[pk]))


def _history_records(model: type[models.Model], client: Client, w: World) -> Requests:
    records = model.history.order_by("pk").values_list("id", "history_id")  # type: ignore[attr-defined]
    for pk, history_id in [*records, (MISSING_PK, MISSING_PK)]:
        yield _get(client, reverse(f"admin:{_info(model)}_simple_history", args=[pk, history_id]))


def _admin_routes() -> dict[str, Callable[[Client, World], Requests]]:
    """Each registered model's standard admin URLs and how to request them: the list (every
    search, filter and action), the add page, and for every row, the other buyer's
    included, its change, delete and history pages and each of its history records."""
    routes: dict[str, Callable[[Client, World], Requests]] = {}
    for model, model_admin in admin.site._registry.items():
        info = _info(model)
        routes[f"admin:{info}_changelist"] = partial(_changelist, model)
        routes[f"admin:{info}_add"] = partial(_add, model)
        for view in ("change", "delete", "history"):
            routes[f"admin:{info}_{view}"] = partial(_per_row, model, view)
        base = f"admin/{model._meta.app_label}/{model._meta.model_name}/"
        routes[f"<{base}<path:object_id>/>"] = partial(_per_row, model, "redirect")
        if isinstance(model_admin, SimpleHistoryAdmin):
            routes[f"admin:{info}_simple_history"] = partial(_history_records, model)
    return routes


ADMIN_ROUTES = _admin_routes()


def _relations(model: type[models.Model]) -> list[str]:
    return [f.name for f in model._meta.get_fields() if f.is_relation and f.concrete]


def _autocomplete(client: Client, w: World) -> Requests:
    """Every relation of every admin's model and of its inlines' models, with searches for
    the other buyer's order (fields that are no autocomplete field answer 403)."""
    url = reverse("admin:autocomplete")
    for model, model_admin in admin.site._registry.items():
        inlines: list[type[InlineModelAdmin]] = list(model_admin.inlines)
        for source in [model, *(inline.model for inline in inlines)]:
            for field in _relations(source):
                for term in SEARCHES:
                    params = {
                        "app_label": source._meta.app_label,
                        "model_name": source._meta.model_name,
                        "field_name": field,
                        "term": term,
                    }
                    yield _get(client, url, params)


def _view_on_site(client: Client, w: World) -> Requests:
    for model in admin.site._registry:
        content_type = ContentType.objects.get_for_model(model)
        for pk in _pks(model):
            yield _get(client, reverse("admin:view_on_site", args=[content_type.pk, pk]))


def _app_lists(client: Client, w: World) -> Requests:
    for app_label in sorted({model._meta.app_label for model in admin.site._registry}):
        yield _get(client, reverse("admin:app_list", args=[app_label]))


def _plain(name: str, *params: dict[str, Any]) -> Callable[[Client, World], Requests]:
    def requests(client: Client, w: World) -> Requests:
        for one in params or ({},):
            yield _get(client, reverse(name), one)

    return requests


def _per_order(name: str) -> Callable[[Client, World], Requests]:
    def requests(client: Client, w: World) -> Requests:
        for order in (w.ann_order, w.ben_order):
            yield _get(client, reverse(name, args=[order.pk]))

    return requests


def _by_buyer(name: str) -> Callable[[Client, World], Requests]:
    def requests(client: Client, w: World) -> Requests:
        for params in ({}, {"buyer": ""}, {"buyer": w.ben.pk}, {"q": "BEN-9002"}):
            yield _get(client, reverse(name), params)

    return requests


def _password_changes(client: Client, w: World) -> Requests:
    for user in (w.ann, w.ben):
        yield _get(client, reverse("admin:auth_user_password_change", args=[user.pk]))


def _allocation_moves(client: Client, w: World) -> Requests:
    for pk in _pks(Allocation):
        yield _get(client, reverse("admin:orders_allocation_move", args=[pk]))


def _password_resets(client: Client, w: World) -> Requests:
    """The reset form, and a request for Ben's address: the answer must not say it exists."""
    url = reverse("admin_password_reset")
    yield _get(client, url)
    yield f"POST {url} ben", client.post(url, {"email": w.ben.email})


CUSTOM: dict[str, Callable[[Client, World], Requests]] = {
    "orders:dashboard": _by_buyer("orders:dashboard"),
    "orders:dashboard_csv": _by_buyer("orders:dashboard_csv"),
    "orders:lead_times": _plain("orders:lead_times"),
    "orders:prices": _plain("orders:prices"),
    "orders:vendors": _plain("orders:vendors", {}, {"sort": "-price_change"}),
    "orders:order_timeline": _per_order("orders:order_timeline"),
    "login": _plain("login"),
    "logout": _plain("logout"),  # a GET logs nobody out (405)
    "admin:index": _plain("admin:index"),
    "admin:login": _plain("admin:login"),
    "admin:logout": _plain("admin:logout"),
    "admin:password_change": _plain("admin:password_change"),
    "admin:password_change_done": _plain("admin:password_change_done"),
    "admin:jsi18n": _plain("admin:jsi18n"),
    "admin:auth_user_password_change": _password_changes,
    "admin:autocomplete": _autocomplete,
    "admin:view_on_site": _view_on_site,
    "admin:app_list": _app_lists,
    "<admin/(?P<url>.*)$>": lambda client, w: iter([_get(client, "/admin/no/such/page/")]),
    "admin:orders_exposure": _plain("admin:orders_exposure"),
    "admin:orders_quota_usage": _plain("admin:orders_quota_usage"),
    "admin:orders_allocation_move": _allocation_moves,
    "admin:orders_purchaseorder_export_csv": _by_buyer("admin:orders_purchaseorder_export_csv"),
    "admin:orders_purchaseorder_export_quotes_csv": _by_buyer(
        "admin:orders_purchaseorder_export_quotes_csv"
    ),
    "admin:orders_purchaseorder_history_csv": _per_order("admin:orders_purchaseorder_history_csv"),
    "admin:orders_purchaseorder_import_orders": _plain("admin:orders_purchaseorder_import_orders"),
    "admin:orders_purchaseorder_import_quotes": _plain("admin:orders_purchaseorder_import_quotes"),
    "admin:orders_pricequote_import_prices": _plain("admin:orders_pricequote_import_prices"),
    "<favicon.ico>": lambda client, w: iter([_get(client, "/favicon.ico")]),
    "admin_password_reset": _password_resets,
    "password_reset_done": _plain("password_reset_done"),
    "password_reset_confirm": lambda client, w: iter(
        [_get(client, reverse("password_reset_confirm", args=["MQ", "no-such-token"]))]
    ),
    "password_reset_complete": _plain("password_reset_complete"),
}


def _text(response: Any) -> str:
    """Everything a response says: its body (streamed or not) and where it redirects."""
    body = b"".join(response.streaming_content) if response.streaming else response.content
    return body.decode("utf-8", "replace") + "\n" + response.get("Location", "")


def test_every_endpoint_is_handled() -> None:
    unhandled = [key for key in ENDPOINTS if key not in CUSTOM and key not in ADMIN_ROUTES]
    assert not unhandled, f"Endpoints the role matrix cannot request yet: {unhandled}"


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_restricted_buyer_never_gets_another_buyers_order(
    client: Client, w: World, endpoint: str
) -> None:
    requests = CUSTOM.get(endpoint) or ADMIN_ROUTES.get(endpoint)
    if requests is None:
        pytest.fail(f"{endpoint} is not handled: add it to CUSTOM (or the admin routes)")
    client.force_login(w.ann)
    asked = 0
    for what, response in requests(client, w):
        asked += 1
        assert response.status_code < 500, what
        leaked = BEN_LEAKS.findall(_text(response))
        assert not leaked, f"{what} ({response.status_code}) shows {sorted(set(leaked))}"
    assert asked, endpoint


# --- The rule, and that it hides no more than it should ----------------------------------------


def test_the_prices_a_buyer_may_see(w: World) -> None:
    """Market prices for everyone; a price charged on an order for those who see the order."""
    manager = UserFactory(username="max", is_staff=True, role=Role.PROCUREMENT_MANAGER)
    viewer = UserFactory(username="vic", is_staff=True, role=Role.VIEWER)
    every = PriceQuote.objects.all()
    market = set(every.exclude(source=PriceQuote.Source.ORDER).values_list("pk", flat=True))
    ann = set(every.filter(unit_price=ANN_PRICE).values_list("pk", flat=True))
    ben = set(every.filter(unit_price=BEN_PRICE).values_list("pk", flat=True))

    def seen(user: Any) -> set[int]:
        return set(permissions.visible_prices(every, user).values_list("pk", flat=True))

    assert seen(w.ann) == market | ann
    assert seen(w.ben) == market | ann | ben  # Ann's price is his twin order's too
    for user in (manager, viewer):
        assert seen(user) == market | ann | ben
    # An account without a role who was given view_pricequote by hand sees no order.
    nobody = UserFactory(username="nora", is_staff=True, role=NO_ROLE)
    assert seen(nobody) == market
    # A price alert names two prices: one of them hidden hides it.
    ben_price = every.get(unit_price=BEN_PRICE)
    market_price = every.get(vendor=ben_price.vendor, unit_price=MARKET_PRICE)
    fall = PriceAlert.objects.create(
        vendor=ben_price.vendor,
        gpu_model=ben_price.gpu_model,
        currency="USD",
        price=market_price,
        low=ben_price,
        rise_percent=Decimal(0),
    )
    assert fall not in permissions.visible_price_alerts(PriceAlert.objects.all(), w.ann)
    assert fall in permissions.visible_price_alerts(PriceAlert.objects.all(), w.ben)
    # Watching an order shows its price too.
    w.ben_order.watchers.add(w.ann)
    assert seen(w.ann) == market | ann | ben


def test_a_restricted_buyer_sees_the_market_and_their_own_prices(client: Any, w: World) -> None:
    client.force_login(w.ann)
    for url in (reverse("orders:prices"), reverse("admin:orders_pricequote_changelist")):
        html = client.get(url).content.decode()
        assert ANN_SEES.search(html), url
        assert "10,000.00" in html or "10000.00" in html, url
    cards = client.get(reverse("orders:vendors")).content.decode()
    assert "+213.4%" in cards  # 31,337.77 over the 10,000.00 low, not Ben's +324.2%
    # The market price for her line is her own, the latest she may see.
    exposure = client.get(reverse("admin:orders_exposure")).context["reports"][0]
    assert [row.replacement for row in exposure.rows] == [GPUS * ANN_PRICE]
    alerts_listed = client.get(reverse("admin:orders_pricealert_changelist")).context["cl"]
    assert [a.vendor.name for a in alerts_listed.result_list] == ["Atlas Compute"]
    dashboard = client.get(reverse("orders:dashboard"), {"buyer": ""}).context["alerts"]
    assert dashboard.price_alerts == 1
    # Her price, charged on Ben's twin order too, without the note that names his.
    listed = client.get(reverse("admin:orders_pricequote_changelist"), {"q": "Charged on"})
    notes = {price.note_as_shown for price in listed.context["cl"].result_list}
    assert notes == {"Charged on an order"}


def test_another_buyers_price_is_404_as_if_it_did_not_exist(client: Any, w: World) -> None:
    ben_price = PriceQuote.objects.get(unit_price=BEN_PRICE)
    record = ben_price.history.get()
    urls = [
        reverse("admin:orders_pricequote_change", args=[ben_price.pk]),
        reverse("admin:orders_pricequote_history", args=[ben_price.pk]),
        reverse("admin:orders_pricequote_simple_history", args=[ben_price.pk, record.pk]),
    ]
    client.force_login(w.ann)
    for url in urls:
        assert client.get(url).status_code == 404, url
    client.force_login(w.ben)
    for url in urls:
        assert client.get(url).status_code == 200, url


def test_who_sees_every_order_sees_every_price(client: Any, w: World) -> None:
    viewer = UserFactory(username="vic", is_staff=True, role=Role.VIEWER)
    client.force_login(viewer)
    html = client.get(reverse("orders:prices")).content.decode()
    assert "42,424.42" in html
    assert ANN_SEES.search(html)
    assert "+324.2%" in client.get(reverse("orders:vendors")).content.decode()
    assert client.get(reverse("orders:dashboard")).context["alerts"].price_alerts == 2
    listed = client.get(reverse("admin:orders_pricequote_changelist")).content.decode()
    assert f"Charged on {BEN_PO}" in listed
    changes = price_change_by_vendor()
    assert any("+324.2%" in change for change in changes.values())


@pytest.mark.parametrize("see_all", [True, False], ids=["buyers-see-all", "buyers-see-own"])
def test_a_buyer_is_told_only_of_price_rises_they_may_see(
    settings: Any, see_all: bool, mailoutbox: Any
) -> None:
    """The price alert on Ben's price names it: with BUYERS_SEE_ALL_ORDERS false, Ann (who
    buys the same GPU model) is not told of it, nor emailed it; Ben and the managers are."""
    settings.BUYERS_SEE_ALL_ORDERS = see_all
    settings.PROCUREMENT_MANAGERS = ["max@gpu-buyers.example"]
    w = _world()
    ben_alert = PriceAlert.objects.get(price__unit_price=BEN_PRICE)
    told = set(ben_alert.notices.values_list("recipient_email", flat=True))
    every = {w.ann.email, w.ben.email, "max@gpu-buyers.example"}
    assert told == (every if see_all else every - {w.ann.email})
    for email_id in notifications.build_digests():
        notifications.send_outbox_email(email_id)
    to_ann = " ".join(m.body for m in mailoutbox if w.ann.email in m.to)
    assert bool(BEN_LEAKS.search(to_ann)) is see_all


def test_a_buyer_who_lost_sight_of_a_price_is_not_emailed_it(
    settings: Any, mailoutbox: Any
) -> None:
    """Noticed while every buyer saw every order, built after the setting turned: the digest
    asks the price rule again, so Ann's notice of Ben's price is skipped, not sent."""
    settings.BUYERS_SEE_ALL_ORDERS = True
    w = _world()
    ben_alert = PriceAlert.objects.get(price__unit_price=BEN_PRICE)
    assert ben_alert.notices.filter(recipient=w.ann).exists()
    settings.BUYERS_SEE_ALL_ORDERS = False
    for email_id in notifications.build_digests():
        notifications.send_outbox_email(email_id)
    to_ann = " ".join(m.body for m in mailoutbox if w.ann.email in m.to)
    assert not BEN_LEAKS.search(to_ann)
    assert ben_alert.notices.get(recipient=w.ann).skipped_reason
    assert any(w.ben.email in m.to and BEN_LEAKS.search(m.body) for m in mailoutbox)
