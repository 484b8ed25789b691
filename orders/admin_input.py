"""Admin parts that survive a bad posted value.

Django's admin looks posted ids up without checking them first in two places: the autocomplete
widgets, when a form is shown again after an error (`queryset.filter(pk__in=[...])`), and list
actions, on the selected rows (`queryset.filter(pk__in=selected)`). A value that is not an id
(`abc`, a space) raises ValueError there, and an id beyond the column's range OverflowError on
SQLite, so a form that should say "Select a valid choice" or a list that should say "nothing
selected" is a 500 instead. `SafeAdminMixin` (on every ModelAdmin of the tracker) leaves such
values out of the lookup, or refuses the action with a message. It also renders the list's
row checkboxes without the template engine (the same HTML as Django's).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field, QuerySet
from django.http import HttpRequest, HttpResponse
from django.utils.html import format_html
from django.utils.translation import gettext as _

from orders.people import person_name


def _can_look_up(target: Field, value: Any, using: str | None) -> bool:
    """Whether `value` can be compared with the column `target` without the database (or the
    driver) refusing it."""
    try:
        python_value = target.to_python(value)
    except ValidationError:
        return False
    if isinstance(python_value, int):
        ops = connections[using or DEFAULT_DB_ALIAS].ops
        low, high = ops.integer_field_range(target.get_internal_type())
        return (low is None or python_value >= low) and (high is None or python_value <= high)
    return True


class _LooksUpValidValuesOnly:
    field: Any
    db: str | None

    def optgroups(self, name: str, value: list[Any], attr: Any = None) -> Any:
        target = self.field.target_field
        usable = [v for v in value if _can_look_up(target, v, self.db)]
        return super().optgroups(name, usable, attr)  # type: ignore[misc]


class SafeAutocompleteSelect(_LooksUpValidValuesOnly, AutocompleteSelect):
    pass


class SafeAutocompleteSelectMultiple(_LooksUpValidValuesOnly, AutocompleteSelectMultiple):
    pass


class SafeAutocompleteMixin:
    """For a ModelAdmin or an inline with `autocomplete_fields`: the same widgets, safe ones."""

    admin_site: Any

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelect(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)  # type: ignore[misc]

    def formfield_for_manytomany(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if "widget" not in kwargs and db_field.name in self.get_autocomplete_fields(request):
            kwargs["widget"] = SafeAutocompleteSelectMultiple(
                db_field, self.admin_site, using=kwargs.get("using")
            )
        return super().formfield_for_manytomany(db_field, request, **kwargs)  # type: ignore[misc]

    def get_autocomplete_fields(self, request: HttpRequest) -> Any:
        return super().get_autocomplete_fields(request)  # type: ignore[misc]


class SafeActionsMixin:
    """For a ModelAdmin: an action on selected rows whose ids are not ids is refused with a
    message (Django then shows the list again), instead of failing the lookup."""

    model: Any

    def response_action(self, request: HttpRequest, queryset: QuerySet[Any]) -> HttpResponse | None:
        selected = request.POST.getlist(helpers.ACTION_CHECKBOX_NAME)
        pk = self.model._meta.pk
        if not all(_can_look_up(pk, value, queryset.db) for value in selected):
            self.message_user(  # type: ignore[attr-defined]
                request,
                "Some of the selected rows are not rows of this list; nothing was changed.",
                messages.WARNING,
            )
            return None
        return super().response_action(request, queryset)  # type: ignore[misc]

    def action_checkbox(self, obj: Any) -> str:
        """Django's row checkbox, the same HTML, without rendering a widget template per row:
        that cost about a third of a 100-row changelist's time (bench/load.sh)."""
        return format_html(
            '<input type="checkbox" name="{}" value="{}" class="action-select" aria-label="{}">',
            helpers.ACTION_CHECKBOX_NAME,
            str(obj.pk),
            format_html(_("Select this object for an action - {}"), str(obj)),
        )


class SafeAdminMixin(SafeAutocompleteMixin, SafeActionsMixin):
    """Both, for every ModelAdmin of the tracker."""


def person_column(field: str) -> Callable[[Any], str]:
    """A list column naming the person in `field` by full name (a bare foreign key would show
    the user name)."""

    @admin.display(description=field.replace("_", " "), ordering=f"{field}__last_name")
    def column(obj: Any) -> str:
        return person_name(getattr(obj, field))

    column.__name__ = f"{field}_name"
    return column
