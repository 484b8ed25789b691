"""Short text that stays one line wherever it goes: an email header, a CSV cell, a page title.

A PO number, a vendor or GPU model name, a note on a quote: these reach email subjects, where a
line break is a header injection (Django refuses such a message with BadHeaderError). So every
short text field refuses control characters three times over: the field's validator (admin
forms, full_clean, the CSV imports), a CHECK constraint per column (a raw update, a bulk insert),
and `header_text`, which makes any text safe for a header whatever the database holds.
Long text (notes) may hold line breaks and is not covered here.
"""

from __future__ import annotations

import re

from django.core.exceptions import ValidationError
from django.db import models
from django.utils.deconstruct import deconstructible

# C0 controls (U+0000-U+001F: NUL, TAB, LF, CR, ESC ...), DEL (U+007F) and the C1 controls
# (U+0080-U+009F, among them NEL U+0085, a line break to some mail and terminal software).
# As a regex class both Python's re and PostgreSQL's regular expressions read the same way
# (SQLite's REGEXP is Python's re, registered by Django).
CONTROL_CHARACTERS = r"[\x00-\x1f\x7f-\x9f]"
_CONTROL = re.compile(CONTROL_CHARACTERS)
_SPACE_OR_CONTROL = re.compile(rf"(?:\s|{CONTROL_CHARACTERS})+")

_SHOWN_MAX = 60


def escaped(value: str) -> str:
    """`value` with each control character written as Python writes it ("\\n", "\\x07")."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], value)


def header_text(value: str) -> str:
    """`value` as one line: every run of whitespace or control characters becomes one space,
    and the ends are stripped. Safe in an email header whatever `value` holds."""
    return _SPACE_OR_CONTROL.sub(" ", value).strip()


@deconstructible
class SingleLineValidator:
    """Refuses text holding a control character; the message names the field (`label`), shows
    the value with the character escaped, and says which character it is."""

    code = "control_character"

    def __init__(self, label: str) -> None:
        self.label = label

    def __call__(self, value: object) -> None:
        text = str(value)
        found = _CONTROL.search(text)
        if found is None:
            return
        shown = escaped(text)
        if len(shown) > _SHOWN_MAX:
            shown = shown[: _SHOWN_MAX - 3] + "..."
        raise ValidationError(
            f'{self.label} "{shown}" contains the control character {escaped(found.group())} '
            f"(a line break, tab or other invisible character): it must be one line of plain "
            "text.",
            code=self.code,
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SingleLineValidator) and other.label == self.label

    def __hash__(self) -> int:
        return hash(self.label)


def single_line(label: str) -> SingleLineValidator:
    """The validator for a short text field called `label` in messages, e.g. "PO number"."""
    return SingleLineValidator(label)


def single_line_check(field: str, *, name: str) -> models.CheckConstraint:
    """The database's refusal of a control character in `field` (table constraint `name`)."""
    return models.CheckConstraint(
        condition=~models.Q(**{f"{field}__regex": CONTROL_CHARACTERS}),
        name=name,
        violation_error_message=f"{field} must be one line of plain text, without control "
        "characters.",
    )
