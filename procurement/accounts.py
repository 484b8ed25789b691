"""Setting a password by email: Django's password-reset views, for any active account.

An account created by an orders import has no usable password (orders.imports): its owner
sets a first one here, from the login page's "Forgot password?" link. Links in the email are
built on SITE_URL, as every other mailed link is, never on the request's Host header (behind
a proxy that is the proxy's name, and a forged one would send a reset link to another site).
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth import views as auth_views
from django.contrib.auth.forms import PasswordResetForm
from django.http import HttpResponse


def _same_address(a: str, b: str) -> bool:
    return (
        unicodedata.normalize("NFKC", a).casefold() == unicodedata.normalize("NFKC", b).casefold()
    )


class SetPasswordForm(PasswordResetForm):
    """Django's reset form, except that an active account without a usable password may
    reset too (Django skips those, taking them for accounts that log in elsewhere; here they
    are imported buyers). Inactive accounts still get nothing."""

    def get_users(self, email: str) -> Iterator[Any]:
        user_model = get_user_model()
        email_field = user_model.get_email_field_name()
        users = user_model._default_manager.filter(
            **{f"{email_field}__iexact": email, "is_active": True}
        )
        return (u for u in users if _same_address(email, getattr(u, email_field)))


class PasswordResetView(auth_views.PasswordResetView):
    """The request form; its email links to SITE_URL."""

    form_class = SetPasswordForm
    email_template_name = "registration/password_reset_email.txt"
    subject_template_name = "registration/password_reset_subject.txt"

    def form_valid(self, form: SetPasswordForm) -> HttpResponse:
        site = urlsplit(settings.SITE_URL)
        # Both set, so the request's host is never asked: domain_override for Django's own
        # context, protocol and domain for any template written in Django's terms.
        self.domain_override = site.netloc
        self.extra_email_context = {
            "site_url": settings.SITE_URL,
            "site_name": "GPU Procurement Tracker",
            "protocol": site.scheme,
            "domain": site.netloc + site.path,
        }
        return super().form_valid(form)
