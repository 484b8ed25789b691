"""Login brute-force protection (django-axes) on the real login views, the client address
it counts by, and the session settings."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import time_machine
from django.test import RequestFactory
from django.utils import timezone

from procurement.security import client_ip
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

PASSWORD = "a long enough password"
LOGINS = ["/accounts/login/", "/admin/login/"]


@pytest.fixture
def dana() -> Any:
    user = UserFactory(username="dana", is_staff=True)
    user.set_password(PASSWORD)
    user.save()
    return user


def _log_in(client: Any, url: str, password: str, **extra: Any) -> Any:
    return client.post(url, {"username": "dana", "password": password}, **extra)


def _logged_in(client: Any) -> bool:
    return "_auth_user_id" in client.session


@pytest.mark.parametrize("url", LOGINS)
def test_failed_logins_lock_the_username_from_that_address(
    client: Any, dana: Any, settings: Any, url: str
) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        response = _log_in(client, url, "wrong")
        assert response.status_code == 200  # the login page again, with its error
    locked = _log_in(client, url, "wrong")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()

    # Now even the right password is refused, on either login page.
    for login in LOGINS:
        response = _log_in(client, login, PASSWORD)
        assert response.status_code == 429, login
        assert not _logged_in(client)

    # The lockout is of this username from this address: the same person elsewhere, and
    # another user here, can still log in.
    other = UserFactory(username="erin", is_staff=True)
    other.set_password(PASSWORD)
    other.save()
    assert client.post(url, {"username": "erin", "password": PASSWORD}).status_code == 302
    client.logout()
    assert _log_in(client, url, PASSWORD, REMOTE_ADDR="192.0.2.7").status_code == 302


def test_the_lockout_ends_after_the_cool_off(client: Any, dana: Any, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 2
    settings.AXES_COOLOFF_TIME = timedelta(minutes=15)
    start = timezone.now()
    with time_machine.travel(start, tick=False):
        for _ in range(2):
            _log_in(client, "/accounts/login/", "wrong")
        assert _log_in(client, "/accounts/login/", PASSWORD).status_code == 429
    with time_machine.travel(start + timedelta(minutes=14), tick=False):
        assert _log_in(client, "/accounts/login/", PASSWORD).status_code == 429
    with time_machine.travel(start + timedelta(minutes=30), tick=False):
        response = _log_in(client, "/accounts/login/", PASSWORD)
        assert response.status_code == 302
        assert _logged_in(client)


def test_a_successful_login_forgets_earlier_failures(client: Any, dana: Any, settings: Any) -> None:
    settings.AXES_FAILURE_LIMIT = 3
    for _ in range(2):
        _log_in(client, "/accounts/login/", "wrong")
    assert _log_in(client, "/accounts/login/", PASSWORD).status_code == 302
    client.logout()
    for _ in range(2):
        _log_in(client, "/accounts/login/", "wrong")
    assert _log_in(client, "/accounts/login/", PASSWORD).status_code == 302


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "", "10.0.0.1"),
        (0, "203.0.113.9", "10.0.0.1"),  # no proxy configured: the header is the client's
        (1, "203.0.113.9", "203.0.113.9"),
        (1, "198.51.100.1, 203.0.113.9", "203.0.113.9"),  # the left one the client made up
        (2, "198.51.100.1, 203.0.113.9, 10.1.1.1", "203.0.113.9"),
        (2, "203.0.113.9", "10.0.0.1"),  # fewer hops than proxies: not through them
        (1, " , ", "10.0.0.1"),
    ],
)
def test_the_client_address_behind_proxies(
    settings: Any, proxies: int, forwarded: str, expected: str
) -> None:
    settings.TRUSTED_PROXY_COUNT = proxies
    headers = {"HTTP_X_FORWARDED_FOR": forwarded} if forwarded else {}
    request = RequestFactory().get("/", REMOTE_ADDR="10.0.0.1", **headers)
    assert client_ip(request) == expected


def test_the_session_lasts_a_working_day_and_cookies_stay_out_of_scripts(
    client: Any, dana: Any, settings: Any
) -> None:
    assert settings.SESSION_COOKIE_AGE == 12 * 60 * 60
    response = _log_in(client, "/accounts/login/", PASSWORD)
    cookie = response.cookies[settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"]
    assert cookie["samesite"] == "Lax"
    assert int(cookie["max-age"]) == 12 * 60 * 60
