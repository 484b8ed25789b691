"""Garbage in query strings and form posts: the dashboard's filters (every view in
orders/urls.py), the admin's change lists (filters, search, ordering, pages, date drill-down,
the CSV exports that read the same parameters) and the add and change forms of the tracker's
models. Each answer is a page (with a form error where a value was wrong), a 400, a 404, or
for the admin lists Django's redirect to the unfiltered list (`?e=1`): never a 500.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from django import forms
from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Permission
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import transaction
from django.http import HttpResponse, QueryDict
from django.test import Client
from django.urls import reverse
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st

from orders.admin_input import SafeAdminMixin
from orders.demo import load_demo
from orders.models import Allocation, PurchaseOrder
from tests.hostile import BAD_INPUT, param_value

pytestmark = pytest.mark.django_db

# Several pages per example are cheap next to an import; give these more examples.
MANY = settings(BAD_INPUT, max_examples=BAD_INPUT.max_examples * 4)


@pytest.fixture
def demo(django_capture_on_commit_callbacks: Any) -> None:
    with django_capture_on_commit_callbacks(execute=True):
        load_demo()


@pytest.fixture
def staff_client(admin_user: Any, demo: None) -> Client:
    """A superuser's browser: a server error is a 500 response, as in production."""
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    return client


@pytest.fixture
def buyer_client(demo: None) -> Client:
    """alice, who buys demo orders (the dashboard defaults its buyer filter to her) and may
    export them."""
    alice = get_user_model().objects.get(username="alice")
    alice.user_permissions.add(Permission.objects.get(codename="view_purchaseorder"))
    client = Client(raise_request_exception=False)
    client.force_login(alice)
    return client


@contextmanager
def _rolled_back() -> Iterator[None]:
    with transaction.atomic():
        yield
        transaction.set_rollback(True)


def _read(response: HttpResponse) -> bytes:
    """The whole body, streamed or not: an export fails while it streams, after its 200."""
    if response.streaming:
        return b"".join(response.streaming_content)
    return response.content


def _query(pairs: list[tuple[str, str]], raw: str) -> str:
    """A query string of the pairs, percent-encoded, plus raw text as a client might send it
    (broken escapes like %zz or %ff, bare & and =)."""
    encoded = urlencode(pairs)
    return "&".join(part for part in (encoded, raw) if part)


def _has_nul(pairs: list[tuple[str, str]], raw: str) -> bool:
    """Whether the query string holds a NUL, which orders.middleware answers with a 400."""
    params = QueryDict(_query(pairs, raw)).lists()
    return any("\x00" in key or any("\x00" in v for v in values) for key, values in params)


RAW_QUERY = st.one_of(
    st.just(""),
    st.sampled_from(["%zz", "%ff%fe", "%00", "a=%", "&&&", "=", "a=1=2", "%C0%AF", "+%20+"]),
    st.text(max_size=20).map(lambda t: quote(t, safe="=&%")),
)


# --- The dashboard -------------------------------------------------------------------------------

DASHBOARD_PARAMS = [
    "vendor",
    "gpu_model",
    "buyer",
    "sort",
    "bom",
    "page",
    "q",
    "o",
    "csrfmiddlewaretoken",
]
DASHBOARD_VIEWS = [
    "orders:dashboard",
    "orders:dashboard_csv",
    "orders:lead_times",
    "orders:prices",
    "orders:vendors",
]


def _dashboard_values() -> st.SearchStrategy[str]:
    # Values the filters accept (ids of the demo's rows, sort keys) next to garbage, so a
    # request mixes valid filters with a bad one.
    return st.one_of(
        param_value(),
        st.integers(min_value=1, max_value=12).map(str),
        st.sampled_from(["vendor", "-mean_slip_days", "on_time_rate", "1"]),
    )


@MANY
@given(
    view=st.sampled_from(DASHBOARD_VIEWS),
    pairs=st.lists(
        st.tuples(st.sampled_from(DASHBOARD_PARAMS) | st.text(max_size=8), _dashboard_values()),
        max_size=5,
    ),
    raw=RAW_QUERY,
    as_buyer=st.booleans(),
)
@example(view="orders:dashboard", pairs=[("vendor", "1\x00")], raw="", as_buyer=False)
@example(view="orders:dashboard_csv", pairs=[("buyer", "\x00")], raw="%ff", as_buyer=True)
@example(view="orders:vendors", pairs=[("sort", "-\x00")], raw="", as_buyer=False)
def test_dashboard_pages_answer_any_query_string_without_a_server_error(
    staff_client: Client,
    buyer_client: Client,
    view: str,
    pairs: list[tuple[str, str]],
    raw: str,
    as_buyer: bool,
) -> None:
    client = buyer_client if as_buyer else staff_client
    response = client.get(f"{reverse(view)}?{_query(pairs, raw)}")
    _read(response)
    assert response.status_code in (200, 400), response.status_code
    if response.status_code == 400:
        if not _has_nul(pairs, raw):  # else orders.middleware refused it before the view
            assert view == "orders:dashboard_csv"  # pages show a bad filter as a form error
            assert response.content.startswith(b"Bad filter:")
    elif view == "orders:dashboard":
        form = response.context["form"]
        assert bool(form.errors) == (b'id="filter-errors"' in response.content)


@MANY
@given(
    pk=st.one_of(st.integers(min_value=0, max_value=20), st.integers(min_value=0)),
    pairs=st.lists(st.tuples(st.text(max_size=8), param_value()), max_size=3),
)
def test_an_order_timeline_for_any_id_is_the_page_or_a_404(
    staff_client: Client, pk: int, pairs: list[tuple[str, str]]
) -> None:
    url = reverse("orders:order_timeline", args=[pk])
    response = staff_client.get(f"{url}?{urlencode(pairs)}")
    exists = PurchaseOrder.objects.filter(pk=pk).exists() if pk < 2**63 else False
    expected = 400 if _has_nul(pairs, "") else 200 if exists else 404
    assert response.status_code == expected


def test_an_order_timeline_whose_id_is_not_a_number_is_a_404(staff_client: Client) -> None:
    for path in ("/orders/abc/timeline/", "/orders/-1/timeline/", "/orders/%00/timeline/"):
        assert staff_client.get(path).status_code == 404


# --- Admin change lists ------------------------------------------------------------------------

ORDERS_ADMINS = [m for m in admin.site._registry if m._meta.app_label == "orders"]


def _changelist_params(model: Any) -> list[str]:
    """Every parameter a change list reads: its filters' own, the date drill-down, search,
    ordering, page, popup and the error flag, plus lookups nobody offered."""
    model_admin = admin.site._registry[model]
    names = ["q", "o", "p", "all", "e", "_popup", "_to_field", "_changelist_filters"]
    for spec in model_admin.list_filter:
        field = spec[0] if isinstance(spec, tuple) else spec
        if isinstance(field, str):
            names += [f"{field}__exact", f"{field}__id__exact", f"{field}__isnull", field]
        else:
            names.append(field.parameter_name)
    if model_admin.date_hierarchy:
        names += [f"{model_admin.date_hierarchy}__{part}" for part in ("year", "month", "day")]
    names += ["pk__in", "id__gt", "id", "vendor__name__icontains", "password", "__", "bom"]
    return names


@st.composite
def _changelist_request(draw: Any) -> tuple[str, str]:
    model = draw(st.sampled_from(ORDERS_ADMINS))
    info = model._meta.app_label, model._meta.model_name
    urls = [reverse("admin:{}_{}_changelist".format(*info))]
    if model is PurchaseOrder:
        urls += [
            reverse("admin:orders_purchaseorder_export_csv"),
            reverse("admin:orders_purchaseorder_export_quotes_csv"),
        ]
    url = draw(st.sampled_from(urls))
    pairs = draw(
        st.lists(
            st.tuples(
                st.sampled_from(_changelist_params(model)),
                st.one_of(param_value(), st.sampled_from(["1", "2", "yes", "no", "-1", "2023"])),
            ),
            max_size=4,
        )
    )
    return url, _query(pairs, draw(RAW_QUERY))


@MANY
@given(request=_changelist_request())
# PostgreSQL refuses NUL in text, which psycopg raises as an error rather than finding nothing.
@example(request=("/admin/orders/purchaseorder/", "q=%00"))
@example(request=("/admin/orders/purchaseorder/", "status__exact=placed%00"))
@example(request=("/admin/orders/purchaseorder/export-csv/", "q=a%00b"))
@example(request=("/admin/orders/slipalert/", "code__exact=%00&o=1.-2"))
@example(request=("/admin/orders/purchaseorder/", "placed_on__year=99999&placed_on__month=13"))
@example(request=("/admin/orders/purchaseorder/", "vendor__id__exact=99999999999999999999"))
def test_admin_lists_answer_any_filter_search_or_ordering_without_a_server_error(
    staff_client: Client, request: tuple[str, str]
) -> None:
    url, query = request
    response = staff_client.get(f"{url}?{query}")
    _read(response)
    # 302: Django's own answer to lookups it cannot use, the list unfiltered with ?e=1.
    # 400: a `_to_field` it does not allow (a SuspiciousOperation), or a NUL in the query
    # string (orders.middleware: PostgreSQL cannot compare text with one).
    assert response.status_code in (200, 302, 400), (url, query, response.status_code)
    if response.status_code == 302:
        assert response["Location"].endswith("?e=1")


@MANY
@given(
    model=st.sampled_from(ORDERS_ADMINS),
    action=st.sampled_from(
        [
            "delete_selected",
            "acknowledge",
            "export_selected_orders_csv",
            "move_to_earlier_order",
            "",
            "no_such_action",
        ]
    )
    | param_value(),
    selected=st.lists(st.integers(min_value=1, max_value=12).map(str) | param_value(), max_size=3),
    select_across=st.sampled_from(["0", "1", "", "abc"]),
    index=st.sampled_from(["0", "1", "-1", "abc", "99"]),
    confirmed=st.booleans(),
)
@example(
    model=PurchaseOrder,
    action="export_selected_orders_csv",
    selected=["1", "abc", "99999999999999999999"],
    select_across="0",
    index="0",
    confirmed=False,
)
def test_admin_list_actions_answer_any_selection_without_a_server_error(
    staff_client: Client,
    model: Any,
    action: str,
    selected: list[str],
    select_across: str,
    index: str,
    confirmed: bool,
) -> None:
    url = reverse(f"admin:orders_{model._meta.model_name}_changelist")
    post = {"action": action, "_selected_action": selected, "select_across": select_across}
    post |= {"index": index, **({"post": "yes"} if confirmed else {})}
    with _rolled_back():
        response = staff_client.post(url, post)
        _read(response)
    # 200: a confirmation page or a download; 302: back to the list with a message.
    assert response.status_code in (200, 302), (url, post, response.status_code)


def test_every_admin_of_the_tracker_checks_posted_ids_before_looking_them_up() -> None:
    for model in ORDERS_ADMINS:
        assert isinstance(admin.site._registry[model], SafeAdminMixin), model


def test_a_nul_in_any_query_string_is_a_400(staff_client: Client) -> None:
    for url in (
        "/?vendor=%00",
        "/vendors/?sort=%00",
        "/admin/orders/purchaseorder/?q=a%00",
        "/admin/orders/purchaseorder/export-csv/?%00=1",
    ):
        assert staff_client.get(url).status_code == 400, url
    assert staff_client.get("/admin/orders/purchaseorder/?q=a%2500").status_code == 200


# --- Admin CSV import pages ----------------------------------------------------------------------

IMPORT_PAGES = {
    "orders": (
        "admin:orders_purchaseorder_import_orders",
        b"po_number,vendor,buyer_email,gpu_model,quantity,unit_price,currency,placed_on\n"
        b"PO-T-1,Northwind Servers,bob@gpu-buyers.example,A10,8,2800,USD,2023-05-02\n",
    ),
    "quotes": (
        "admin:orders_purchaseorder_import_quotes",
        b"po_number,quoted_on,delivery_date\nPO-2023-0412,2023-08-01,2024-01-15\n",
    ),
    "prices": (
        "admin:orders_pricequote_import_prices",
        b"vendor,gpu_model,unit_price,currency,quoted_on\nStratus Cloud,A10,3000,USD,2023-05-02\n",
    ),
}


@pytest.fixture
def previewed(staff_client: Client) -> Client:
    """A file of each kind previewed and waiting for its confirmation in the session."""
    for name, content in IMPORT_PAGES.values():
        preview = staff_client.post(
            reverse(name), {"file": SimpleUploadedFile("ok.csv", content, "text/csv")}
        )
        assert preview.context["token"]
    return staff_client


@MANY
@given(
    kind=st.sampled_from(sorted(IMPORT_PAGES)),
    token=st.one_of(param_value(), st.lists(param_value(), min_size=2, max_size=3)),
)
# secrets.compare_digest raises TypeError for a str with non-ASCII characters.
@example(kind="orders", token="é")
@example(kind="prices", token="\x00")
def test_a_confirm_with_a_wrong_token_says_to_upload_again_and_imports_nothing(
    previewed: Client, kind: str, token: Any
) -> None:
    url = reverse(IMPORT_PAGES[kind][0])
    with _rolled_back():
        response = previewed.post(url, {"token": token}, follow=True)
    assert response.status_code == 200
    assert response.redirect_chain == [(url, 302)]
    assert "upload the file again" in response.content.decode()
    assert f"csv_import_{kind}" in previewed.session  # the right token still works


# --- Admin add and change forms ----------------------------------------------------------------


def _plausible(field: forms.Field, current: Any) -> Any:
    """A value the field would accept, or the one the page shows: the base every example
    damages a few fields of, so the rest of the form gets past validation."""
    if current not in (None, "", []):
        if isinstance(current, list | tuple):
            return [str(v) for v in current]
        return str(current)
    if isinstance(field, forms.ModelMultipleChoiceField):
        return [str(field.queryset.values_list("pk", flat=True).first() or "")]
    if isinstance(field, forms.ModelChoiceField):
        return str(field.queryset.values_list("pk", flat=True).first() or "")
    if isinstance(field, forms.BooleanField):
        return "on"
    if isinstance(field, forms.DateField):
        return "2023-06-01"
    if isinstance(field, forms.DateTimeField):
        return "2023-06-01 12:00"
    if isinstance(field, forms.IntegerField):
        return "1"
    if isinstance(field, forms.DecimalField):
        return "1.00"
    if isinstance(field, forms.EmailField):
        return "someone@example.com"
    if isinstance(field, forms.URLField):
        return "https://example.com"
    if isinstance(field, forms.ChoiceField):
        choices = [str(k) for k, _ in field.choices if k not in ("", None)]
        return choices[0] if choices else ""
    if isinstance(field, forms.CharField):
        return "USD" if "currency" in (field.label or "").lower() else "Hostile test"
    return ""


def _form_post_data(response: HttpResponse) -> dict[str, Any]:
    """What submitting the page as shown (empty fields made plausible) would post: the main
    form and every inline formset with its management form."""
    data: dict[str, Any] = {}

    def add(form: forms.BaseForm) -> None:
        for name, field in form.fields.items():
            data[form.add_prefix(name)] = _plausible(field, form[name].value())

    add(response.context["adminform"].form)
    for inline in response.context["inline_admin_formsets"]:
        formset = inline.formset
        management = formset.management_form
        for name in management.fields:
            data[management.add_prefix(name)] = str(management[name].value())
        for form in formset.forms:
            add(form)
    return data


def _form_pages(client: Client) -> dict[str, tuple[str, dict[str, Any]]]:
    """Every page with a form, by "<model>-add" and "<model>-change" (the change page of the
    model's first row in the demo data): its URL and plausible POST data."""
    pages = {}
    for model in ORDERS_ADMINS:
        info = model._meta.app_label, model._meta.model_name
        urls = {"add": reverse("admin:{}_{}_add".format(*info))}
        first = model._default_manager.order_by("pk").first()
        if first is not None:
            urls["change"] = reverse("admin:{}_{}_change".format(*info), args=[first.pk])
        for page, url in urls.items():
            response = client.get(url)
            if response.status_code != 200 or "adminform" not in response.context:
                continue  # no add page (alerts, scan runs...)
            if not response.context["adminform"].form.fields:
                continue  # a read-only page
            pages[f"{model._meta.model_name}-{page}"] = (url, _form_post_data(response))
    return pages


@pytest.fixture
def form_pages(staff_client: Client) -> dict[str, tuple[str, dict[str, Any]]]:
    return _form_pages(staff_client)


FORM_PAGES = [
    f"{model._meta.model_name}-{page}" for model in ORDERS_ADMINS for page in ("add", "change")
]
# (field, value) to post instead of what the page shows: a field is named, or picked by an
# index into the page's sorted field names.
Change = tuple[int | str, Any]


@MANY
@given(
    page=st.sampled_from(FORM_PAGES),
    changes=st.lists(
        st.tuples(
            st.integers(min_value=0), st.one_of(param_value(), st.lists(param_value(), max_size=3))
        ),
        min_size=1,
        max_size=3,
    ),
    drop=st.none() | st.integers(min_value=0),
)
# Django's autocomplete widget looked a value that is not an id up when showing the form again.
@example(page="pricequote-add", changes=[("gpu_model", " ")], drop=None)
@example(page="purchaseorder-add", changes=[("watchers", ["1", "abc"])], drop=None)
@example(page="orderline-change", changes=[("order", "99999999999999999999")], drop=None)
def test_admin_forms_answer_any_post_with_a_form_error_or_a_save_never_a_server_error(
    staff_client: Client,
    form_pages: dict[str, tuple[str, dict[str, Any]]],
    page: str,
    changes: list[Change],
    drop: int | None,
) -> None:
    assume(page in form_pages)  # models without an add or change form
    url, base = form_pages[page]
    post = dict(base)
    names = sorted(post)
    for name, value in changes:
        post[name if isinstance(name, str) else names[name % len(names)]] = value
    if drop is not None:
        post.pop(names[drop % len(names)], None)
    with _rolled_back():
        response = staff_client.post(url, post)
    # 200: the form again with its errors; 302: saved (a generated value can be valid);
    # 400: a request Django refuses outright (too many fields, a bad management form).
    assert response.status_code in (200, 302, 400), (url, response.status_code)
    if response.status_code == 200:
        assert response.context["errors"], "a form shown again says what is wrong"


@MANY
@given(
    to_line=st.one_of(param_value(), st.integers(min_value=1, max_value=12).map(str)),
    gpus=st.one_of(param_value(), st.integers(min_value=-5, max_value=500).map(str)),
)
def test_moving_an_allocation_answers_any_post_with_a_form_error_or_the_move(
    staff_client: Client, to_line: str, gpus: str
) -> None:
    url = reverse("admin:orders_allocation_move", args=[Allocation.objects.order_by("pk")[0].pk])
    with _rolled_back():
        response = staff_client.post(url, {"to_line": to_line, "gpus": gpus})
    assert response.status_code in (200, 302), response.status_code
    if response.status_code == 200:
        assert response.context["form"].errors


def test_every_model_with_an_admin_form_is_covered_and_its_plausible_post_mostly_saves(
    staff_client: Client, form_pages: dict[str, tuple[str, dict[str, Any]]]
) -> None:
    """The base the examples damage is mostly a valid form (so a damaged field is judged
    against an otherwise good form, and what follows validation runs too)."""
    covered = {key.split("-")[0] for key in form_pages}
    assert {
        "purchaseorder",
        "vendor",
        "gpumodel",
        "orderline",
        "deliveryquote",
        "delivery",
        "pricequote",
        "exchangerate",
        "team",
        "quota",
        "allocation",
    } <= covered
    saved = []
    for page, (url, post) in form_pages.items():
        with _rolled_back():
            response = staff_client.post(url, post)
        assert response.status_code in (200, 302), (page, response.status_code)
        if response.status_code == 302:
            saved.append(page)
    assert len(saved) >= len(form_pages) * 2 // 3, saved


def test_admin_pages_of_an_object_that_cannot_exist_send_back_to_the_index_or_404(
    admin_user: Any,
) -> None:
    """Django's answer to a missing object is a redirect with a message; the tracker's own
    pages under an object (moving an allocation) answer 404."""
    client = Client(raise_request_exception=False)
    client.force_login(admin_user)
    for object_id in ("abc", "99999999999999999999", "%00"):
        for model in ORDERS_ADMINS:
            base = reverse(f"admin:orders_{model._meta.model_name}_changelist")
            for url in (f"{base}{object_id}/change/", f"{base}{object_id}/delete/"):
                response = client.get(url)
                assert response.status_code in (302, 403, 404), (url, response.status_code)
        response = client.post(f"{base}{object_id}/delete/", {"post": "yes"})
        assert response.status_code in (302, 403, 404), (base, response.status_code)
        move = f"{reverse('admin:orders_allocation_changelist')}{object_id}/move/"
        assert client.get(move).status_code in (302, 404)
