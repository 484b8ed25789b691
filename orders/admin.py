"""The buyers' interface. Thin: new quotes and receipts go through orders.services; list pages
read annotated querysets so they run a fixed number of queries whatever the number of rows."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import admin
from django.core.paginator import Paginator
from django.db import models
from django.db.models import Prefetch, Q, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.text import smart_split, unescape_string_literal

from orders import order_tally, permissions, services
from orders.admin_alerts import (
    ALERT_COLUMNS,
    ALERT_FILTERS,
    AlertAdminMixin,
    AlertStatusFilter,
    acknowledged,
)
from orders.admin_export import PurchaseOrderExportMixin
from orders.admin_filters import RelatedWithRowsFilter
from orders.admin_history import OrderAuditTrailMixin, ReadOnlyHistoryAdmin
from orders.admin_import import CsvImportAdminMixin
from orders.admin_input import SafeAdminMixin, SafeAutocompleteMixin, person_column
from orders.admin_prices import VendorScorecardMixin
from orders.admin_quotas import OrderLineAllocationsMixin
from orders.admin_scope import OrderScopedAdmin, OrderScopedInline
from orders.models import (
    Delivery,
    DeliveryQuote,
    GpuModel,
    OrderLine,
    OutboxEmail,
    PurchaseOrder,
    ScanRun,
    SlipAlert,
    Vendor,
    open_alert_q,
)
from orders.paging import CountedPaginator
from orders.permissions import Scope


def _days(value: int | None) -> str:
    return "—" if value is None else f"{value:+d}" if value else "0"


class ParentAwareInlineFormSet(BaseInlineFormSet):
    """Attach the parent object (saved or not) to each form's instance, so model validation
    can compare against the order's dates on the add page too."""

    def _construct_form(self, i: int, **kwargs: Any) -> forms.ModelForm:
        form = super()._construct_form(i, **kwargs)
        setattr(form.instance, self.fk.name, self.instance)
        return form


class DeliveryInlineFormSet(ParentAwareInlineFormSet):
    def clean(self) -> None:
        super().clean()
        # Each receipt is checked alone by the model; several new ones on one line could still
        # add up to more than was ordered.
        new_by_line: dict[OrderLine, int] = defaultdict(int)
        for form in self.forms:
            if not form.has_changed() or form.instance.pk or self._should_delete_form(form):
                continue
            line, quantity = form.cleaned_data.get("line"), form.cleaned_data.get("quantity")
            if line and quantity:
                new_by_line[line] += quantity
        for line, new in new_by_line.items():
            received = sum(d.quantity for d in line.deliveries.all())
            if received + new > line.quantity:
                raise forms.ValidationError(
                    f"Receipts for {line.gpu_model} add up to {received + new}, more than the "
                    f"{line.quantity} ordered."
                )


class OrderLineInline(SafeAutocompleteMixin, OrderScopedInline, admin.TabularInline):
    model = OrderLine
    formset = ParentAwareInlineFormSet
    extra = 0
    min_num = 0
    autocomplete_fields = ["gpu_model"]


class DeliveryQuoteInline(OrderScopedInline, admin.TabularInline):
    """The quote history, newest first. Add-only: a correction is a new quote."""

    model = DeliveryQuote
    formset = ParentAwareInlineFormSet
    fields = ["quoted_on", "delivery_date", "line", "note", "source", "recorded_by"]
    readonly_fields = ["recorded_by"]
    ordering = ["-quoted_on", "-id"]
    extra = 0
    can_delete = False
    verbose_name_plural = "delivery quotes (newest first; add a new quote to correct one)"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[DeliveryQuote]:
        return super().get_queryset(request).select_related("line__gpu_model", "recorded_by")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "line":
            kwargs["queryset"] = _lines_of_order_in_url(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class DeliveryInline(OrderScopedInline, admin.TabularInline):
    model = Delivery
    formset = DeliveryInlineFormSet
    fields = ["line", "quantity", "delivered_on", "note", "recorded_by"]
    readonly_fields = ["recorded_by"]
    extra = 0
    verbose_name_plural = "deliveries received"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Delivery]:
        return super().get_queryset(request).select_related("line__gpu_model", "recorded_by")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "line":
            kwargs["queryset"] = _lines_of_order_in_url(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


def _lines_of_order_in_url(request: HttpRequest) -> QuerySet[OrderLine]:
    object_id = request.resolver_match.kwargs.get("object_id") if request.resolver_match else None
    lines = OrderLine.objects.select_related("gpu_model").prefetch_related("deliveries")
    return lines.filter(order_id=object_id) if object_id else lines.none()


class SlipAlertInline(OrderScopedInline, admin.TabularInline):
    """The order's alert history, read-only: alerts are facts the scan records."""

    model = SlipAlert
    fields = [
        "detected_at",
        "code",
        "severity",
        "status",
        "message",
        "closed_reason",
        acknowledged,
    ]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "slip alerts"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[SlipAlert]:
        return super().get_queryset(request).select_related("acknowledged_by")


class SlippingFilter(admin.SimpleListFilter):
    title = "slipping"
    parameter_name = "slipping"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes: current date later than first quote"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() == "yes":
            return queryset.filter(slip_days__gt=0)
        if self.value() == "no":
            return queryset.filter(Q(slip_days__lte=0) | Q(slip_days__isnull=True))
        return None


def _tallied_filters(request: HttpRequest) -> dict[str, Any] | None:
    """The order tally's filters (orders.order_tally.order_count) that count what the order
    list shows for this request, or None when the tally cannot count it: a user who does not
    see every order, a search, a date, a GPU model, a popup, any parameter but the vendor,
    buyer, status and slipping filters, ordering and page."""
    if permissions.view_scope(request.user) is not Scope.ALL:
        return None
    filters: dict[str, Any] = {}
    for name, values in request.GET.lists():
        if len(values) != 1:
            return None
        value = values[0]
        if name in ("o", "p") or (name == "q" and not value.strip()):
            continue
        if name in ("vendor__id__exact", "buyer__id__exact") and value.isdigit():
            filters[name.split("__", 1)[0] + "_id"] = int(value)
        elif name == "status__exact":
            filters["statuses"] = [value]
        elif name == SlippingFilter.parameter_name and value in ("yes", "no"):
            filters["slipping"] = value == "yes"
        else:
            return None
    return filters


@admin.register(PurchaseOrder)
class PurchaseOrderAdmin(
    SafeAdminMixin,
    OrderAuditTrailMixin,
    PurchaseOrderExportMixin,
    CsvImportAdminMixin,
    OrderScopedAdmin,
):
    csv_import_kinds = ("orders", "quotes")
    # What fits a 1366-pixel screen beside the filters; the lead times are on the order's
    # page, its timeline and in the CSV export.
    list_display = [
        "po_number",
        "vendor",
        person_column("buyer"),
        "status",
        "gpu_summary",
        "baseline_date",
        "current_date",
        "slip",
        "open_alerts",
    ]
    list_filter = [
        "vendor",
        "status",
        ("buyer", RelatedWithRowsFilter),
        ("lines__gpu_model", RelatedWithRowsFilter),
        SlippingFilter,
    ]
    # The filtered count is enough to page; a second count of every order is not worth it.
    show_full_result_count = False
    list_select_related = ["vendor", "buyer"]
    search_fields = ["po_number", "vendor__name"]
    date_hierarchy = "placed_on"
    autocomplete_fields = ["vendor", "buyer", "watchers"]
    readonly_fields = ["created_at", "updated_at"]
    fieldsets = [
        (None, {"fields": ["po_number", "vendor", "buyer", "watchers", "status"]}),
        ("Dates and money", {"fields": ["placed_on", "need_by", "currency"]}),
        (None, {"fields": ["notes", "created_at", "updated_at"]}),
    ]
    inlines = [OrderLineInline, DeliveryQuoteInline, DeliveryInline, SlipAlertInline]
    order_path = ""

    def get_autocomplete_fields(self, request: HttpRequest) -> list[str]:
        # Autocompleting people needs view permission on users, which buyers do not have:
        # they get plain choices instead.
        if request.user.has_perm("auth.view_user"):
            return self.autocomplete_fields
        return ["vendor"]

    def get_changeform_initial_data(self, request: HttpRequest) -> dict[str, Any]:
        # A buyer adding an order is usually its buyer.
        return {"buyer": request.user.pk, **super().get_changeform_initial_data(request)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[PurchaseOrder]:
        lines = OrderLine.objects.select_related("gpu_model").order_by("id")
        unacknowledged = SlipAlert.objects.filter(open_alert_q()).only("order_id", "code")
        return (
            super()
            .get_queryset(request)
            .prefetch_related(
                Prefetch("lines", queryset=lines),
                Prefetch("alerts", queryset=unacknowledged, to_attr="open_alert_list"),
            )
        )

    def get_paginator(
        self,
        request: HttpRequest,
        queryset: QuerySet[PurchaseOrder],
        per_page: int,
        orphans: int = 0,
        allow_empty_first_page: bool = True,
    ) -> Paginator:
        """Pages counted by the order tally when it can count the list (`_tallied_filters`):
        a few hundred counters instead of every order."""
        filters = _tallied_filters(request)
        if filters is None:
            return super().get_paginator(
                request, queryset, per_page, orphans, allow_empty_first_page
            )
        return CountedPaginator(
            queryset,
            per_page,
            orphans=orphans,
            allow_empty_first_page=allow_empty_first_page,
            count_of=lambda: order_tally.order_count(**filters),
        )

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[PurchaseOrder], search_term: str
    ) -> tuple[QuerySet[PurchaseOrder], bool]:
        """What `search_fields` matches (every word in the PO number or the vendor's name),
        with the matching vendors looked up first (one query per word on the short vendor
        table): the orders are then filtered on their own columns alone, so PostgreSQL can
        combine the PO number's trigram index with the vendor id's."""
        for word in smart_split(search_term):
            if word[:1] in {'"', "'"} and word[-1:] == word[:1]:
                word = unescape_string_literal(word)
            vendors = list(Vendor.objects.filter(name__icontains=word).values_list("pk", flat=True))
            queryset = queryset.filter(Q(po_number__icontains=word) | Q(vendor__in=vendors))
        # The rest of the chain with nothing left to search: OrderScopedAdmin narrows the
        # autocomplete's suggestions to the orders the user may add to.
        return super().get_search_results(request, queryset, "")

    @admin.display(description="open alerts")
    def open_alerts(self, order: PurchaseOrder) -> str:
        # The codes' labels ("lead time multiplied"): they wrap in a narrow column.
        return ", ".join(sorted({a.get_code_display() for a in order.open_alert_list})) or "—"

    @admin.display(description="GPUs")
    def gpu_summary(self, order: PurchaseOrder) -> str:
        return ", ".join(f"{line.quantity}x {line.gpu_model.name}" for line in order.lines.all())

    @admin.display(description="first date", ordering="baseline_delivery_date")
    def baseline_date(self, order: PurchaseOrder) -> Any:
        return order.baseline_delivery_date

    @admin.display(description="current date", ordering="current_delivery_date")
    def current_date(self, order: PurchaseOrder) -> Any:
        return order.current_delivery_date

    @admin.display(description="slip (days)", ordering="slip_days")
    def slip(self, order: PurchaseOrder) -> str:
        return _days(order.slip_days)

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is DeliveryQuote:
            for quote in formset.save(commit=False):
                services.quote_add(
                    order=form.instance,
                    line=quote.line,
                    quoted_on=quote.quoted_on,
                    delivery_date=quote.delivery_date,
                    note=quote.note,
                    source=quote.source,
                    recorded_by=request.user,
                )
        elif formset.model is Delivery:
            for delivery in formset.save(commit=False):
                services.delivery_record(
                    line=delivery.line,
                    quantity=delivery.quantity,
                    delivered_on=delivery.delivered_on,
                    note=delivery.note,
                    recorded_by=request.user,
                )
            for delivery in formset.deleted_objects:
                services.delivery_remove(delivery=delivery)
        else:
            super().save_formset(request, form, formset, change)
            if formset.model is OrderLine and (formset.new_objects or formset.changed_objects):
                # What a vendor charged is a price point: record it and judge the rise.
                services.prices_check_after_commit()


@admin.register(Vendor)
class VendorAdmin(SafeAdminMixin, VendorScorecardMixin, admin.ModelAdmin):
    formfield_overrides = {models.URLField: {"assume_scheme": "https"}}
    list_display = ["name", "kind", *VendorScorecardMixin.scorecard_columns, "active"]
    list_filter = ["kind", "active"]
    search_fields = ["name", "contact_email"]


@admin.register(GpuModel)
class GpuModelAdmin(SafeAdminMixin, admin.ModelAdmin):
    list_display = ["name", "family", "memory_gb"]
    list_filter = ["family"]
    search_fields = ["name", "family"]


@admin.register(OrderLine)
class OrderLineAdmin(
    SafeAdminMixin, OrderLineAllocationsMixin, OrderScopedAdmin, ReadOnlyHistoryAdmin
):
    list_display = [
        "order",
        "gpu_model",
        "quantity",
        "unit_price",
        "currency",
        "baseline_delivery_date",
        "current_delivery_date",
        "slip_days",
    ]
    list_filter = ["gpu_model", "order__vendor"]
    list_select_related = ["order", "gpu_model"]
    search_fields = ["order__po_number", "gpu_model__name"]
    autocomplete_fields = ["order", "gpu_model"]

    @admin.display(ordering="order__currency")
    def currency(self, line: OrderLine) -> str:
        return line.order.currency

    @admin.display(description="slip (days)", ordering="slip_days")
    def slip_days(self, line: OrderLine) -> str:
        return _days(line.slip_days)


@admin.register(DeliveryQuote)
class DeliveryQuoteAdmin(SafeAdminMixin, OrderScopedAdmin, ReadOnlyHistoryAdmin):
    """Quotes are history: they can be added and read, never edited or deleted here."""

    list_display = [
        "order",
        "line",
        "quoted_on",
        "delivery_date",
        "source",
        person_column("recorded_by"),
    ]
    list_filter = ["order__vendor", "quoted_on"]
    list_select_related = ["order", "line__gpu_model", "line__order", "recorded_by"]
    search_fields = ["order__po_number", "note", "source"]
    autocomplete_fields = ["order"]
    fields = ["order", "line", "quoted_on", "delivery_date", "note", "source"]
    date_hierarchy = "quoted_on"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: DeliveryQuote, form: Any, change: bool) -> None:
        quote = services.quote_add(
            order=obj.order,
            line=obj.line,
            quoted_on=obj.quoted_on,
            delivery_date=obj.delivery_date,
            note=obj.note,
            source=obj.source,
            recorded_by=request.user,
        )
        obj.pk, obj.created_at, obj.recorded_by = quote.pk, quote.created_at, quote.recorded_by


@admin.register(Delivery)
class DeliveryAdmin(SafeAdminMixin, OrderScopedAdmin, ReadOnlyHistoryAdmin):
    list_display = ["order", "line", "quantity", "delivered_on", person_column("recorded_by")]
    list_filter = ["order__vendor", "delivered_on"]
    list_select_related = ["order", "line__gpu_model", "line__order", "recorded_by"]
    search_fields = ["order__po_number"]
    # The order follows from the line; the service fills it in.
    fields = ["line", "quantity", "delivered_on", "note"]
    autocomplete_fields = ["line"]
    date_hierarchy = "delivered_on"

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: Delivery, form: Any, change: bool) -> None:
        delivery = services.delivery_record(
            line=obj.line,
            quantity=obj.quantity,
            delivered_on=obj.delivered_on,
            note=obj.note,
            recorded_by=request.user,
        )
        obj.pk, obj.created_at, obj.recorded_by = delivery.pk, delivery.created_at, request.user

    def delete_model(self, request: HttpRequest, obj: Delivery) -> None:
        services.delivery_remove(delivery=obj)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Delivery]) -> None:
        for delivery in queryset.select_related("line__order"):
            services.delivery_remove(delivery=delivery)


@admin.register(SlipAlert)
class SlipAlertAdmin(AlertAdminMixin, OrderScopedAdmin):
    """Alerts are recorded by the scan; people only acknowledge open ones. Open ones are
    listed unless the status filter asks for the superseded or resolved history."""

    list_display = [
        "order",
        "vendor",
        "code",
        "severity",
        "status",
        "detected_at",
        *ALERT_COLUMNS,
        "closed_reason",
    ]
    list_filter = [
        AlertStatusFilter,
        "code",
        "severity",
        ("order__vendor", admin.RelatedOnlyFieldListFilter),
        *ALERT_FILTERS,
    ]
    list_select_related = ["order__vendor", "acknowledged_by"]
    search_fields = ["order__po_number", "order__vendor__name", "message"]
    date_hierarchy = "detected_at"
    # The acknowledge action needs change permission (procurement managers) on the alert's
    # order; every field stays read-only.

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        if obj is not None and not obj.is_open:  # superseded or resolved: history
            return False
        return super().has_change_permission(request, obj)

    @admin.display(ordering="order__vendor__name")
    def vendor(self, alert: SlipAlert) -> Vendor:
        return alert.order.vendor


@admin.register(OutboxEmail)
class OutboxEmailAdmin(SafeAdminMixin, admin.ModelAdmin):
    """The alert emails: what was sent to whom, and what is waiting for a retry."""

    list_display = [
        "created_at",
        "recipient_email",
        "subject",
        "status",
        "attempts",
        "sent_at",
        "last_error",
    ]
    list_filter = ["status"]
    search_fields = ["recipient_email", "subject"]
    readonly_fields = [f.name for f in OutboxEmail._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ScanRun)
class ScanRunAdmin(SafeAdminMixin, admin.ModelAdmin):
    list_display = [
        "started_at",
        "finished_at",
        "scanned_for",
        "orders",
        "new_alerts",
        "emails",
        "findings",
    ]
    readonly_fields = [f.name for f in ScanRun._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
