"""CSV export from the purchase order list: a button that exports what the list shows (its
filters and search), an action for the selected orders, and a quote history link.

Thin: the files come from orders.exports, the same writer as the management commands. The
views are streamed, so a 100,000-order export starts at once and never sits in memory.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.options import IS_POPUP_VAR, IncorrectLookupParameters
from django.contrib.admin.views.main import ERROR_FLAG
from django.core.exceptions import PermissionDenied
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.urls import URLPattern, path, reverse

from orders import exports
from orders.dates import today
from orders.models import PurchaseOrder

if TYPE_CHECKING:
    _Base = admin.ModelAdmin
else:
    _Base = object

BOM_PARAM = "bom"


def csv_response(blocks: Iterator[str], *, filename: str) -> StreamingHttpResponse:
    """A streamed CSV download (UTF-8) named `filename`."""
    response = StreamingHttpResponse(blocks, content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


class PurchaseOrderExportMixin(_Base):
    """For PurchaseOrderAdmin: URLs `<changelist>/export-csv/` and `.../export-quotes-csv/`
    (names `orders_purchaseorder_export_csv` and `orders_purchaseorder_export_quotes_csv`),
    and the action "Export selected orders as CSV". Each needs view permission on orders.
    Add `?bom=1` for a UTF-8 byte order mark (Excel)."""

    def get_urls(self) -> list[URLPattern]:
        name = f"{self.opts.app_label}_{self.opts.model_name}"
        urls = [
            path(
                "export-csv/",
                self.admin_site.admin_view(self.export_orders_csv_view),
                name=f"{name}_export_csv",
            ),
            path(
                "export-quotes-csv/",
                self.admin_site.admin_view(self.export_quotes_csv_view),
                name=f"{name}_export_quotes_csv",
            ),
        ]
        # Before the inherited ones: "<path:object_id>/" would swallow these otherwise.
        return urls + super().get_urls()

    def get_actions(self, request: HttpRequest) -> dict[str, Any]:
        actions = super().get_actions(request)
        # As ModelAdmin.get_actions: no actions on popups or when actions are switched off.
        if self.actions is None or IS_POPUP_VAR in request.GET:
            return actions
        if self.has_view_permission(request):
            func, name, description = self.get_action(export_selected_orders_csv)
            actions[name] = (func, name, description)
        return actions

    def export_orders_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The orders file for exactly the orders the list shows with these parameters."""
        orders, bom = self._listed_orders(request)
        if orders is None:
            return self._bad_filters(request)
        return csv_response(
            exports.orders_csv(orders, bom=bom), filename=f"orders-{today().isoformat()}.csv"
        )

    def export_quotes_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The quote history of the orders the list shows with these parameters."""
        if not request.user.has_perm("orders.view_deliveryquote"):
            raise PermissionDenied
        orders, bom = self._listed_orders(request)
        if orders is None:
            return self._bad_filters(request)
        return csv_response(
            exports.quotes_csv(orders, bom=bom), filename=f"quotes-{today().isoformat()}.csv"
        )

    def _listed_orders(self, request: HttpRequest) -> tuple[QuerySet[PurchaseOrder] | None, bool]:
        """The changelist's own queryset for this request's filters and search (all pages),
        or None when the parameters are not ones the list accepts."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        # The list would take "bom" for a field lookup; it is ours.
        params = request.GET.copy()
        bom = params.pop(BOM_PARAM, ["0"])[-1] == "1"
        request.GET = params
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return None, bom
        # Built with this request's filters and search; not sliced to the current page.
        return changelist.queryset, bom

    def _bad_filters(self, request: HttpRequest) -> HttpResponseRedirect:
        """What the list itself does with parameters it cannot use: show it unfiltered,
        with its error flag."""
        url = reverse(f"admin:{self.opts.app_label}_{self.opts.model_name}_changelist")
        return HttpResponseRedirect(f"{url}?{ERROR_FLAG}=1")


@admin.action(description="Export selected orders as CSV", permissions=["view"])
def export_selected_orders_csv(
    modeladmin: admin.ModelAdmin, request: HttpRequest, queryset: QuerySet[PurchaseOrder]
) -> StreamingHttpResponse:
    return csv_response(
        exports.orders_csv(queryset), filename=f"orders-selected-{today().isoformat()}.csv"
    )
