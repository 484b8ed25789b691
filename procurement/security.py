"""The client address django-axes counts failed logins by."""

from __future__ import annotations

from django.conf import settings
from django.http import HttpRequest


def client_ip(request: HttpRequest) -> str | None:
    """The address the request came from: REMOTE_ADDR, or behind TRUSTED_PROXY_COUNT
    proxies that each append the address they saw to X-Forwarded-For, the entry the
    outermost one appended. Entries left of it are whatever the client sent, so they are
    never trusted (a client could name any address and dodge its lockout)."""
    proxies = settings.TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return request.META.get("REMOTE_ADDR")
    forwarded = [a.strip() for a in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [a for a in forwarded if a]
    if len(forwarded) < proxies:  # not through the expected proxies
        return request.META.get("REMOTE_ADDR")
    return forwarded[-proxies]
