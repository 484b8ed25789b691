"""Requests refused before any view sees them."""

from __future__ import annotations

from collections.abc import Callable

from django.core.exceptions import BadRequest
from django.http import HttpRequest, HttpResponse


class RejectNulInQueryStringMiddleware:
    """A NUL character anywhere in the query string (`?q=%00`) is a 400.

    PostgreSQL cannot hold NUL in text, so psycopg raises instead of sending a filter or search
    that contains one, and an admin list, an export link or a dashboard filter would answer
    500 rather than "nothing found". No link the tracker makes has one; forms already refuse
    NUL in posted text (Django's ProhibitNullCharactersValidator)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if any(
            "\x00" in key or any("\x00" in value for value in values)
            for key, values in request.GET.lists()
        ):
            raise BadRequest("A NUL character in the query string.")
        return self.get_response(request)
