"""How a person is named on every page, email and admin column: their full name where the
account has one, else their user name."""

from __future__ import annotations

from django.contrib.auth.models import AbstractBaseUser


def person_name(user: AbstractBaseUser | None) -> str:
    """ "Alice Moreau" for alice; "alice" when no name is recorded; "—" for nobody."""
    if user is None:
        return "—"
    full_name = getattr(user, "get_full_name", lambda: "")()
    return full_name.strip() or user.get_username()
