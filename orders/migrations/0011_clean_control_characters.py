"""Before 0012 makes the database refuse them, two kinds of rows it would refuse are dealt with.

1. PO numbers that differ only in case (PO-1, po-1). 0012 makes a PO number unique whatever
   its case, and which order should keep the number is a person's call: the migration stops,
   changing nothing, with a message that lists them and says how to fix them.
2. Short text holding control characters (a line break in a PO number stopped the digest
   emails). Each run of them becomes one space, the ends are stripped, and each change is
   printed. A value that would then be empty, or (for the names that are unique whatever
   their case) taken by another row, gets its row id added, so no row is refused or lost.

The historical (audit) tables keep what was recorded. The character set is a frozen copy of
orders.text.CONTROL_CHARACTERS (tests/unit/test_text_safety.py checks they agree).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.db import migrations
from django.db.models import Count
from django.db.models.functions import Lower

CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"
_CONTROL_RUN = re.compile(rf"{CONTROL_CHARACTERS}+")

# (model, field, unique whatever the case, may be empty)
FIELDS = (
    ("purchaseorder", "po_number", True, False),
    ("vendor", "name", True, False),
    ("gpumodel", "name", True, False),
    ("gpumodel", "family", False, True),
    ("team", "name", True, False),
    ("deliveryquote", "note", False, True),
    ("deliveryquote", "source", False, True),
    ("delivery", "note", False, True),
    ("pricequote", "note", False, True),
)


@dataclass(frozen=True)
class Change:
    table: str
    field: str
    pk: int
    before: str
    after: str

    def __str__(self) -> str:
        # repr: the control characters written as Python writes them ('\n', '\x85').
        return f"  {self.table}.{self.field} id {self.pk}: {self.before!r} -> {self.after!r}"


def cleaned(value: str) -> str:
    """`value` with each run of control characters replaced by one space, stripped."""
    return _CONTROL_RUN.sub(" ", value).strip()


def cleaned_values(
    rows: Iterable[tuple[int, str]],
    *,
    taken: Iterable[str] = (),
    unique_ci: bool = False,
    may_be_empty: bool = True,
    max_length: int,
) -> dict[int, str]:
    """The new value of each (pk, value) row holding a control character.

    `taken`: the values of the other rows. With `unique_ci`, a cleaned value equal (ignoring
    case) to a taken one or to another cleaned one gets " (id PK)" added; so does an empty one
    when the field may not be empty. Rows without control characters are left out."""
    used = {value.lower() for value in taken}
    new: dict[int, str] = {}
    for pk, value in sorted(rows):
        if not _CONTROL_RUN.search(value):
            continue
        value = cleaned(value)
        if (unique_ci and value.lower() in used) or (not value and not may_be_empty):
            suffix = f" (id {pk})"
            value = (value[: max_length - len(suffix)] + suffix).strip()
        used.add(value.lower())
        new[pk] = value
    return new


def clean_control_characters(apps: Any, schema_editor: Any) -> list[Change]:
    """Clean every short text field (FIELDS); print and return what changed. Rows holding
    control characters are rare, so each gets an UPDATE of its own."""
    changes: list[Change] = []
    for model_name, field, unique_ci, may_be_empty in FIELDS:
        model = apps.get_model("orders", model_name)
        dirty = list(
            model.objects.filter(**{f"{field}__regex": CONTROL_CHARACTERS}).values_list(
                "pk", field
            )
        )
        if not dirty:
            continue
        taken: list[str] = []
        if unique_ci:
            taken = list(
                model.objects.exclude(pk__in=[pk for pk, _ in dirty]).values_list(field, flat=True)
            )
        new = cleaned_values(
            dirty,
            taken=taken,
            unique_ci=unique_ci,
            may_be_empty=may_be_empty,
            max_length=model._meta.get_field(field).max_length,
        )
        before = dict(dirty)
        for pk, value in new.items():
            model.objects.filter(pk=pk).update(**{field: value})
            changes.append(Change(model._meta.db_table, field, pk, before[pk], value))
    if changes:
        print(f"\n  Removed control characters from {len(changes)} value(s):")
        for change in changes:
            print(change)
    return changes


def po_number_case_clashes(orders: Iterable[tuple[int, str]]) -> list[list[tuple[int, str]]]:
    """Groups of (pk, PO number) whose numbers are equal ignoring case, each sorted by pk,
    the groups by their first number."""
    groups: dict[str, list[tuple[int, str]]] = {}
    for pk, number in orders:
        groups.setdefault(number.lower(), []).append((pk, number))
    clashes = [sorted(group) for group in groups.values() if len(group) > 1]
    return sorted(clashes, key=lambda group: group[0][1].lower())


def case_clash_message(clashes: list[list[tuple[int, str]]]) -> str:
    listed = "; ".join(
        ", ".join(f"{number} (order id {pk})" for pk, number in group) for group in clashes
    )
    return (
        f"PO numbers are now unique whatever their case, and {len(clashes)} group(s) of "
        f"orders have numbers that differ only in case: {listed}. Decide which order keeps "
        "each number and give the others another one (in the admin, under Purchase orders), "
        "or delete the duplicate orders; then run migrate again. Nothing was changed."
    )


def check_po_number_case_clashes(apps: Any, schema_editor: Any) -> None:
    """Stop the migration, listing them, if two PO numbers differ only in case. Numbers with
    control characters are left out: the cleaning gives them a number of their own."""
    orders = apps.get_model("orders", "PurchaseOrder").objects.exclude(
        po_number__regex=CONTROL_CHARACTERS
    )
    lowered = (
        orders.values(lower=Lower("po_number"))
        .annotate(n=Count("pk"))
        .filter(n__gt=1)
        .values_list("lower", flat=True)
    )
    clashing = orders.alias(lower=Lower("po_number")).filter(lower__in=lowered)
    clashes = po_number_case_clashes(clashing.values_list("pk", "po_number"))
    if clashes:
        raise RuntimeError(case_clash_message(clashes))


class Migration(migrations.Migration):
    dependencies = [("orders", "0010_audit_history")]

    operations = [
        migrations.RunPython(check_po_number_case_clashes, migrations.RunPython.noop),
        migrations.RunPython(clean_control_characters, migrations.RunPython.noop),
    ]
