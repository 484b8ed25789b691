"""The audit trail in the admin: read-only history pages, and one trail per order.

- `ReadOnlyHistoryAdmin`: django-simple-history's history page for a model (who, when, what
  changed), with no way to revert: the settings hide the button and the form view refuses
  POST, since a revert would write an old row straight back, past the services' locks,
  limits and checks, and would edit append-only quotes.
- `OrderAuditTrailMixin`: the order's "History" page becomes its audit trail: the order's
  own records and its lines', quotes', receipts' and allocations', newest first, with a CSV
  download. Seen by whoever may view the order.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseNotAllowed
from django.template.response import TemplateResponse
from django.urls import URLPattern, path
from simple_history.admin import SimpleHistoryAdmin

from orders import audit
from orders.admin_export import csv_response
from orders.exports import csv_lines
from orders.models import PurchaseOrder

if TYPE_CHECKING:
    _Base = admin.ModelAdmin
else:
    _Base = object


class ReadOnlyHistoryAdmin(SimpleHistoryAdmin):
    """SimpleHistoryAdmin whose history can be read, never written back."""

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        # SIMPLE_HISTORY_REVERT_DISABLED only hides the button; a POST would still save.
        if request.method not in ("GET", "HEAD"):
            return HttpResponseNotAllowed(["GET", "HEAD"])
        return super().history_form_view(request, object_id, version_id, extra_context)

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True


class OrderAuditTrailMixin(_Base):
    """For PurchaseOrderAdmin: `<id>/history/` shows the order's audit trail and
    `<id>/history/csv/` (name `orders_purchaseorder_history_csv`) downloads it."""

    def get_urls(self) -> list[URLPattern]:
        csv_url = path(
            "<path:object_id>/history/csv/",
            self.admin_site.admin_view(self.history_csv_view),
            name=f"{self.opts.app_label}_{self.opts.model_name}_history_csv",
        )
        # Before the inherited ones: "<path:object_id>/" would swallow it otherwise.
        return [csv_url, *super().get_urls()]

    def _viewable_order(self, request: HttpRequest, object_id: str) -> PurchaseOrder:
        """The order, if this user may view it (the admin's own queryset and permission)."""
        pk = str(unquote(object_id))
        if not pk.isdigit() or not self.get_queryset(request).filter(pk=pk).exists():
            raise Http404("No such purchase order.")
        order = PurchaseOrder.objects.only("pk", "po_number").get(pk=pk)
        if not self.has_view_permission(request, order):
            raise PermissionDenied
        return order

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        order = self._viewable_order(request, object_id)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Audit trail: {order.po_number}",
            "subtitle": None,
            "opts": self.opts,
            "object": order,
            "trail": audit.order_trail(order.pk),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, "admin/orders/purchaseorder/audit_trail.html", context)

    def history_csv_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        order = self._viewable_order(request, object_id)
        rows = (audit.history_row(entry) for entry in audit.order_trail(order.pk)[::-1])
        return csv_response(
            csv_lines(rows, header=audit.HISTORY_COLUMNS, bom=request.GET.get("bom") == "1"),
            filename=f"audit-trail-{order.pk}.csv",
        )
