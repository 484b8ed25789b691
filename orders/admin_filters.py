"""List filters shared by the admin pages."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import get_fields_from_path
from django.db.models import QuerySet
from django.http import HttpRequest

from orders import permissions
from orders.db_functions import distinct_values


class AcknowledgedFilter(admin.SimpleListFilter):
    title = "acknowledged"
    parameter_name = "acknowledged"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() in ("yes", "no"):
            return queryset.filter(acknowledged_at__isnull=self.value() == "no")
        return None


class RelatedWithRowsFilter(admin.RelatedOnlyFieldListFilter):
    """Django's RelatedOnlyFieldListFilter (the choices are the related objects, GPU models
    or buyers, that the rows the user may see refer to) that costs the same at a million
    orders as at a hundred for whoever sees every row: their choices are the distinct values
    of the foreign key's own column, read along its index (orders.db_functions
    .distinct_values), not a DISTINCT over every order. A user who sees only some orders
    gets Django's query over those."""

    def field_choices(
        self, field: Any, request: HttpRequest, model_admin: Any
    ) -> list[tuple[Any, str]]:
        if permissions.view_scope(request.user) is not permissions.Scope.ALL:
            return super().field_choices(field, request, model_admin)
        # Every hop before the last is a required key from the child (a line's order), so
        # every row of the last model belongs to some row of the list.
        key = get_fields_from_path(model_admin.model, self.field_path)[-1]
        values = distinct_values(key.model, key.attname)
        ordering = self.field_admin_ordering(field, request, model_admin)
        return field.get_choices(
            include_blank=False, limit_choices_to={"pk__in": values}, ordering=ordering
        )
