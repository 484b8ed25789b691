"""What the admin pages of slip and price alerts share: both are records a scan makes, which
people only read and acknowledge."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.db.models import Model, QuerySet
from django.http import HttpRequest

from orders import alerts
from orders.admin_filters import AcknowledgedFilter
from orders.admin_input import SafeAdminMixin
from orders.models import SlipAlert
from orders.people import person_name


@admin.display(description="acknowledged", ordering="acknowledged_at")
def acknowledged(alert: Any) -> str:
    """ "2026-12-04 by Alice Moreau", or "no": one column, so an alert list fits a laptop."""
    if alert.acknowledged_at is None:
        return "no"
    by = person_name(alert.acknowledged_by) if alert.acknowledged_by else "a removed user"
    return f"{alert.acknowledged_at:%Y-%m-%d} by {by}"


# The columns every alert list ends with, and its last filter.
ALERT_COLUMNS: list[Any] = ["message", "notified_at", acknowledged]
ALERT_FILTERS: list[Any] = [AcknowledgedFilter]


class AlertAdminMixin(SafeAdminMixin):
    """Alerts are recorded by a scan: nobody adds, edits or deletes one; people with change
    permission acknowledge them (the `acknowledge` action, through
    orders.alerts.alerts_acknowledge). `alert_noun` names them in messages."""

    model: type[Model]
    message_user: Any  # ModelAdmin's
    alert_noun = "alert"
    actions = ["acknowledge"]
    search_fields = ["message"]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [f.name for f in self.model._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.action(description="Acknowledge selected alerts", permissions=["change"])
    def acknowledge(self, request: HttpRequest, queryset: QuerySet[Any]) -> None:
        count = alerts.alerts_acknowledge(
            alert_ids=list(queryset.values_list("pk", flat=True)),
            user=request.user,
            model=self.model,
        )
        self.message_user(request, f"Acknowledged {count} {self.alert_noun}(s).")


class AlertStatusFilter(admin.SimpleListFilter):
    """Slip alerts by status, open ones unless asked otherwise: superseded and resolved
    ones are history."""

    title = "status"
    parameter_name = "status"
    ALL = "all"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [*SlipAlert.Status.choices, (self.ALL, "All")]

    def _chosen(self) -> str:
        value = self.value()
        return value if value in {*SlipAlert.Status.values, self.ALL} else SlipAlert.Status.OPEN

    def choices(self, changelist: ChangeList) -> Any:
        chosen = self._chosen()
        for value, label in self.lookup_choices:
            yield {
                "selected": value == chosen,
                "query_string": changelist.get_query_string({self.parameter_name: value}),
                "display": label,
            }

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        chosen = self._chosen()
        return None if chosen == self.ALL else queryset.filter(status=chosen)
