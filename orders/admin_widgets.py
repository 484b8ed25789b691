"""Autocomplete widgets that survive a bad value.

Django's admin autocomplete widgets look up the selected values when a form is shown again
after an error: `queryset.filter(pk__in=[...])` with whatever was posted. A value that is not an
id (`abc`, a space) raises ValueError there and an id beyond the column's range OverflowError on
SQLite, so a form that should say "Select a valid choice" is a 500 instead. These widgets
leave such values out of the lookup; the field's own validation still reports them.
"""

from __future__ import annotations

from typing import Any

from django.contrib.admin.widgets import AutocompleteSelect, AutocompleteSelectMultiple
from django.core.exceptions import ValidationError
from django.db import DEFAULT_DB_ALIAS, connections
from django.db.models import Field
from django.http import HttpRequest


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
