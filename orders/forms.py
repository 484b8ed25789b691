"""Forms for the dashboard pages: GET filters validated like any input, so a bad value in a
URL is a message on the page, never a server error."""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib.auth import get_user_model
from django.http import QueryDict

from orders import permissions
from orders.dashboard import Selection
from orders.db_functions import distinct_values
from orders.models import GpuModel, PurchaseOrder, Vendor
from orders.people import person_name


class BuyerChoiceField(forms.ModelChoiceField):
    def label_from_instance(self, obj: Any) -> str:
        return person_name(obj)


class DashboardFilterForm(forms.Form):
    """Vendor, GPU model and buyer of the open orders the dashboard shows. An empty value
    means any. A buyer who opens the dashboard with no buyer in the URL sees their own orders
    ("mine"); choosing "All buyers" sends an empty buyer and shows everyone's."""

    vendor = forms.ModelChoiceField(
        queryset=Vendor.objects.order_by("name"), required=False, empty_label="All vendors"
    )
    gpu_model = forms.ModelChoiceField(
        queryset=GpuModel.objects.order_by("name"),
        required=False,
        empty_label="All GPU models",
        label="GPU model",
    )
    buyer = BuyerChoiceField(
        # Only people who buy something: a list of every account would be noise.
        queryset=get_user_model()
        .objects.filter(pk__in=PurchaseOrder.objects.order_by().values("buyer_id"))
        .order_by("first_name", "last_name", "username"),
        required=False,
        empty_label="All buyers",
    )

    @classmethod
    def for_request(cls, params: QueryDict, user: Any) -> DashboardFilterForm:
        """The form bound to the request's GET parameters, with the buyer defaulting to the
        logged-in user when they buy any order and the URL names no buyer."""
        data = params.copy()
        if "buyer" not in data and user.is_authenticated and user.purchase_orders.exists():
            data["buyer"] = str(user.pk)
        form = cls(data)
        form.viewer = user
        # Buyers of orders the user may see: names of the others are none of their business.
        # Who sees every order gets every buyer, read along the buyer index.
        buyers = form.fields["buyer"]
        if permissions.view_scope(user) is permissions.Scope.ALL:
            visible: Any = distinct_values(PurchaseOrder, "buyer_id")
        else:
            visible = PurchaseOrder.objects.visible_to(user).order_by().values("buyer_id")
        buyers.queryset = (
            get_user_model()
            .objects.filter(pk__in=visible)
            .order_by("first_name", "last_name", "username")
        )
        return form

    viewer: Any = None  # set by for_request: whose dashboard (orders.permissions)

    def selection(self) -> Selection:
        """The filters that validated; one that did not is left out (and shown as an error)."""
        if not hasattr(self, "cleaned_data"):
            self.is_valid()
        cleaned = self.cleaned_data
        return Selection(
            vendor=cleaned.get("vendor"),
            gpu_model=cleaned.get("gpu_model"),
            buyer=cleaned.get("buyer"),
            viewer=self.viewer,
        )

    def query_string(self) -> str:
        """The valid filters as URL parameters, buyer always included (empty = all buyers) so
        a link made from it means the same for whoever opens it."""
        selection = self.selection()
        params = QueryDict(mutable=True)
        for name in ("vendor", "gpu_model", "buyer"):
            value = getattr(selection, name)
            if value is not None or name == "buyer":
                params[name] = "" if value is None else str(value.pk)
        return params.urlencode()


SCORECARD_SORTS = {
    "vendor": "vendor",
    "orders": "orders",
    "units": "GPUs",
    "on_time_rate": "on time (first date)",
    "on_time_rate_latest": "on time (latest date)",
    "mean_slip_days": "mean slip (days)",
    "median_slip_days": "median slip (days)",
    "mean_requotes": "re-quotes per order",
    "open_alert_share": "orders with open alerts",
}


class ScorecardSortForm(forms.Form):
    """`?sort=mean_slip_days` or `?sort=-mean_slip_days` (descending)."""

    sort = forms.ChoiceField(
        choices=[(f"{d}{k}", f"{d}{k}") for k in SCORECARD_SORTS for d in ("", "-")],
        required=False,
    )

    def key(self) -> tuple[str, bool]:
        """The column to sort by and whether descending; by vendor name when not valid."""
        value = self.cleaned_data.get("sort") if self.is_valid() else ""
        if not value:
            return "vendor", False
        return value.lstrip("-"), value.startswith("-")
