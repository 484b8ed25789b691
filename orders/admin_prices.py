"""Admin for prices, exchange rates and price alerts, the budget exposure page, and the vendor
scorecard columns. Thin: new prices go through orders.services; figures come from
orders.exposure and orders.scorecards."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import path

from orders import exposure, permissions, services
from orders.admin_alerts import ALERT_COLUMNS, ALERT_FILTERS, AlertAdminMixin
from orders.admin_history import ReadOnlyHistoryAdmin
from orders.admin_import import CsvImportAdminMixin
from orders.admin_input import SafeAdminMixin
from orders.models import ExchangeRate, PriceAlert, PriceQuote, Vendor
from orders.scorecards import (
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

    list_display = ["quoted_on", "gpu_model", "vendor", "unit_price", "currency", "source", "note"]
    list_filter = ["source", "currency", "gpu_model", ("vendor", admin.RelatedOnlyFieldListFilter)]
    list_select_related = ["vendor", "gpu_model"]
    search_fields = ["vendor__name", "gpu_model__name", "note"]
    date_hierarchy = "quoted_on"
    autocomplete_fields = ["vendor", "gpu_model"]
    fields = ["vendor", "gpu_model", "unit_price", "currency", "quoted_on", "note", "source"]
    readonly_fields = ["source"]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False if obj is not None else super().has_change_permission(request, obj)

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
        # Money committed on orders: only the orders the user may see count.
        lines = permissions.scoped(exposure.open_lines_priced(), request.user, path="order")
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

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return request.user.has_perm("orders.change_pricealert")


class ScorecardChangeList(ChangeList):
    def get_results(self, request: HttpRequest) -> None:
        super().get_results(request)
        # Not a column the database can sort: worked out from the price histories in one query.
        changes = price_change_by_vendor()
        for vendor in self.result_list:
            vendor.price_change = changes.get(vendor.pk, "")


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

    @admin.display(description="median slip (days)", ordering="sc_median_slip")
    def median_slip(self, vendor: Any) -> str:
        return shown_number(vendor.sc_median_slip)

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
