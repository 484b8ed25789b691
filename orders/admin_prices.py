"""Admin for prices, exchange rates and price alerts, the budget exposure page, and the vendor
scorecard columns. Thin: new prices go through orders.services; figures come from
orders.exposure and orders.scorecards. Every price, price alert and price figure shown is of
the prices the user may see (orders.permissions.visible_prices)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from orders import exposure, permissions, services
from orders.admin_alerts import ALERT_COLUMNS, ALERT_FILTERS, AlertAdminMixin
from orders.admin_history import ReadOnlyHistoryAdmin
from orders.admin_import import CsvImportAdminMixin
from orders.admin_input import SafeAdminMixin
from orders.models import ExchangeRate, PriceAlert, PriceQuote, Vendor
from orders.scorecards import (
    median_slips,
    price_change_by_vendor,
    shown_number,
    shown_percent,
    vendors_with_scorecards,
)


@admin.register(PriceQuote)
class PriceQuoteAdmin(SafeAdminMixin, CsvImportAdminMixin, ReadOnlyHistoryAdmin):
    """Prices are facts as quoted: add a new one rather than editing an old one, or import a
    price sheet."""

    csv_import_kinds = ("prices",)

    list_display = [
        "quoted_on",
        "gpu_model",
        "vendor",
        "unit_price",
        "currency",
        "source",
        "shown_note",
    ]
    list_filter = ["source", "currency", "gpu_model", ("vendor", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["vendor", "gpu_model"]
    # The note as this user may read it (an annotation, see get_queryset).
    search_fields = ["vendor__name", "gpu_model__name", "note_as_shown"]
    date_hierarchy = "quoted_on"
    autocomplete_fields = ["vendor", "gpu_model"]
    fields = ["vendor", "gpu_model", "unit_price", "currency", "quoted_on", "note", "source"]
    readonly_fields = ["source"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PriceQuote]:
        # The list, search, filters, date drill-down, change and history pages, and every
        # autocomplete of a price, start here.
        prices = permissions.visible_prices(super().get_queryset(request), request.user)
        return prices.annotate(note_as_shown=permissions.shown_price_note(request.user))

    @admin.display(description="note", ordering="note_as_shown")
    def shown_note(self, price: Any) -> str:
        return price.note_as_shown

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        fields = super().get_fields(request, obj)
        # A price's page, or a history record's (a copy, without the annotation).
        charged = obj is not None and obj.source == PriceQuote.Source.ORDER
        if charged and permissions.order_price_notes_hidden(request.user):
            return [name for name in fields if name != "note"]
        return fields

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

    def _visible_or_404(self, request: HttpRequest, object_id: str) -> None:
        """A price the user may not see is 404 on its history pages too (simple-history would
        answer 403 from the history's copy, which says it exists); a deleted price's history
        is for those who see every price."""
        pk = unquote(object_id)
        try:
            visible = self.get_queryset(request).filter(pk=pk).exists()
        except (ValueError, ValidationError):
            raise Http404(f"No price quote with ID {pk!r}.") from None
        if not visible and permissions.view_scope(request.user) is not permissions.Scope.ALL:
            raise Http404(f"No price quote with ID {pk!r} for you.")

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> Any:
        self._visible_or_404(request, object_id)
        return super().history_view(request, object_id, extra_context)

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        self._visible_or_404(request, object_id)
        return super().history_form_view(request, object_id, version_id, extra_context)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> Any:
        # As OrderScopedAdmin: a 404 says nothing about whether the price exists.
        raise Http404(f"No price quote with ID {object_id!r} for you.")

    def save_model(self, request: HttpRequest, obj: PriceQuote, form: Any, change: bool) -> None:
        obj.pk = services.price_quote_add(
            vendor=obj.vendor,
            gpu_model=obj.gpu_model,
            unit_price=obj.unit_price,
            currency=obj.currency,
            quoted_on=obj.quoted_on,
            note=obj.note,
        ).pk

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.exposure_view)
        return [path("exposure/", view, name="orders_exposure"), *super().get_urls()]

    def exposure_view(self, request: HttpRequest) -> HttpResponse:
        """Budget exposure of open orders: totals per GPU model, vendor and buyer."""
        if not (
            request.user.has_perm("orders.view_purchaseorder")
            and request.user.has_perm("orders.view_pricequote")
        ):
            raise PermissionDenied
        # Money committed on orders: only the orders the user may see count, priced at the
        # latest market price among the prices they may see.
        prices = permissions.visible_prices(PriceQuote.objects.all(), request.user)
        lines = permissions.scoped(exposure.open_lines_priced(prices), request.user, path="order")
        reports = [
            exposure.exposure_totals(g, lines=lines) for g in ("gpu_model", "vendor", "buyer")
        ]
        context = {
            **self.admin_site.each_context(request),
            "title": "Budget exposure of open orders",
            "reports": reports,
            "reporting_currency": reports[0].reporting_currency,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/orders/exposure.html", context)


@admin.register(ExchangeRate)
class ExchangeRateAdmin(SafeAdminMixin, admin.ModelAdmin):
    list_display = ["valid_on", "currency", "to_currency", "rate"]
    list_filter = ["currency", "to_currency"]
    date_hierarchy = "valid_on"


@admin.register(PriceAlert)
class PriceAlertAdmin(AlertAdminMixin, admin.ModelAdmin):
    """Recorded by the price scan; people only acknowledge them."""

    alert_noun = "price alert"
    list_display = ["detected_at", "gpu_model", "vendor", "rise_percent", *ALERT_COLUMNS]
    list_filter = ["gpu_model", ("vendor", admin.RelatedOnlyFieldListFilter), *ALERT_FILTERS]
    list_select_related = ["gpu_model", "vendor", "acknowledged_by"]
    search_fields = ["vendor__name", "gpu_model__name", "message"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[PriceAlert]:
        # Its message names both prices: only alerts about prices the user may see.
        return permissions.visible_price_alerts(super().get_queryset(request), request.user)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("orders.change_pricealert")


class ScorecardChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Not a column the database can sort: worked out from the price histories in one query.
        changes = price_change_by_vendor(viewer=request.user)
        # Nor is a median of the tally's histogram of slips: one query for the page.
        medians = median_slips(vendor.pk for vendor in self.result_list)
        for vendor in self.result_list:
            vendor.price_change = changes.get(vendor.pk, "")
            vendor.sc_median_slip = medians.get(vendor.pk)


class VendorScorecardMixin:
    """Scorecard columns on the vendor list, sortable (each is an annotation)."""

    scorecard_columns = [
        "orders",
        "units",
        "on_time",
        "on_time_latest",
        "mean_slip",
        "median_slip",
        "mean_requotes",
        "open_alerts",
        "price_change",
    ]

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return ScorecardChangeList

    def get_queryset(self, request: HttpRequest) -> QuerySet[Vendor]:
        return vendors_with_scorecards()

    @admin.display(description="orders", ordering="sc_orders")
    def orders(self, vendor: Any) -> int:
        return vendor.sc_orders or 0

    @admin.display(description="GPUs", ordering="sc_units")
    def units(self, vendor: Any) -> int:
        return vendor.sc_units or 0

    @admin.display(description="on time (first date)", ordering="sc_on_time")
    def on_time(self, vendor: Any) -> str:
        return shown_percent(vendor.sc_on_time / vendor.sc_received if vendor.sc_received else None)

    @admin.display(description="on time (latest date)", ordering="sc_on_time_latest")
    def on_time_latest(self, vendor: Any) -> str:
        received = vendor.sc_received
        return shown_percent(vendor.sc_on_time_latest / received if received else None)

    @admin.display(description="mean slip (days)", ordering="sc_mean_slip")
    def mean_slip(self, vendor: Any) -> str:
        return shown_number(vendor.sc_mean_slip)

    @admin.display(description="median slip (days)")
    def median_slip(self, vendor: Any) -> str:
        return shown_number(getattr(vendor, "sc_median_slip", None))

    @admin.display(description="re-quotes per order", ordering="sc_mean_requotes")
    def mean_requotes(self, vendor: Any) -> str:
        return shown_number(vendor.sc_mean_requotes)

    @admin.display(description="orders with open alerts", ordering="sc_open_alerts")
    def open_alerts(self, vendor: Any) -> str:
        orders = vendor.sc_orders
        return shown_percent((vendor.sc_open_alerts or 0) / orders if orders else None)

    @admin.display(description="price change (window)")
    def price_change(self, vendor: Any) -> str:
        return getattr(vendor, "price_change", "") or "—"
