"""Object-level permissions in the admin: every admin of something tied to a purchase order
lists only what the user may see (orders.permissions) and lets them change only what they
may change.

- Lists, searches, autocompletes, filters' counts, actions and CSV exports start from
  `get_queryset()`, so they never include an order the user may not see.
- The change, delete and history pages of such an object answer 404, as for an object that
  does not exist (Django would redirect to the index with a message instead).
- An order the user sees but may not change opens read-only (no save buttons, no inline
  add or delete); a POST to it is refused with 403 by Django's own check.
- Choices of an order or order line on a form, in a select or an autocomplete, are the ones
  the user may change.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import ValidationError
from django.db.models import QuerySet
from django.http import Http404, HttpRequest

from orders import permissions
from orders.models import OrderLine, PurchaseOrder


def _restrict_choices(db_field: Any, request: HttpRequest, kwargs: dict[str, Any]) -> None:
    """An order or order line to pick on a form: only those the user may change."""
    if "queryset" in kwargs:
        kwargs["queryset"] = _editable(kwargs["queryset"], db_field.related_model, request)
    elif db_field.related_model in (PurchaseOrder, OrderLine):
        queryset = db_field.related_model._default_manager.all()
        kwargs["queryset"] = _editable(queryset, db_field.related_model, request)


def _editable(queryset: QuerySet[Any], model: Any, request: HttpRequest) -> QuerySet[Any]:
    if model is PurchaseOrder:
        return permissions.scoped(queryset, request.user, path="", change=True)
    if model is OrderLine:
        return permissions.scoped(queryset, request.user, path="order", change=True)
    return queryset


class OrderScopedAdmin(admin.ModelAdmin):
    """For the ModelAdmin of orders and of anything tied to one: set `order_path`, the path
    from the model to its order ("" for the order itself, "order", "line__order")."""

    order_path = "order"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        return permissions.scoped(super().get_queryset(request), request.user, path=self.order_path)

    def _order_id(self, obj: Any) -> int | None:
        return permissions.order_id_of(obj, self.order_path)

    def has_view_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_view_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return permissions.can_view_order(request.user, self._order_id(obj))

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_change_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return permissions.can_change_order(request.user, self._order_id(obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        allowed = super().has_delete_permission(request, obj)
        if obj is None or not allowed:
            return allowed
        return permissions.can_change_order(request.user, self._order_id(obj))

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _restrict_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        queryset, may_have_duplicates = super().get_search_results(request, queryset, search_term)
        match = request.resolver_match
        if match is not None and match.url_name == "autocomplete":
            # Suggestions for a form's order or line field: what the user may add to.
            queryset = permissions.scoped(queryset, request.user, path=self.order_path, change=True)
        return queryset, may_have_duplicates

    def history_view(
        self, request: HttpRequest, object_id: str, extra_context: dict[str, Any] | None = None
    ) -> Any:
        """An object the user may not see is 404 here too. simple-history's history view would
        fall back to the history's copy of the object and answer 403, which says it exists;
        a deleted object's history is for those who see every order."""
        pk = unquote(object_id)
        try:
            visible = self.get_queryset(request).filter(pk=pk).exists()
        except (ValueError, ValidationError):  # not an id at all
            raise Http404(f"No {self.opts.verbose_name} with ID {pk!r}.") from None
        if not visible and permissions.view_scope(request.user) is not permissions.Scope.ALL:
            raise Http404(f"No {self.opts.verbose_name} with ID {pk!r} for you.")
        return super().history_view(request, object_id, extra_context)

    def _get_obj_does_not_exist_redirect(
        self, request: HttpRequest, opts: Any, object_id: str
    ) -> Any:
        # The one hook Django's change, delete and history views share for "no such object in
        # get_queryset()". A 404 says nothing about whether the object exists elsewhere.
        raise Http404(f"No {opts.verbose_name} with ID {object_id!r} for you.")


class OrderScopedInline(admin.options.InlineModelAdmin):
    """For inlines whose parent is tied to an order: `parent_order_path` leads from the
    parent object (which Django passes as `obj`) to its order. Rows can be added, changed or
    deleted only on an order the user may change."""

    parent_order_path = ""

    def _parent_editable(self, request: HttpRequest, obj: Any) -> bool:
        if obj is None:  # the parent's add page: the user may add that parent
            return True
        order_id = permissions.order_id_of(obj, self.parent_order_path)
        return permissions.can_change_order(request.user, order_id)

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_add_permission(request, obj) and self._parent_editable(request, obj)

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and self._parent_editable(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_delete_permission(request, obj) and self._parent_editable(request, obj)

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        _restrict_choices(db_field, request, kwargs)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)
