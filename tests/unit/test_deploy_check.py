"""`manage.py check --deploy --fail-level WARNING`, which the production entrypoint runs before
starting `web`, passes with production settings and fails on the embedded defaults; and what
those settings make of sessions, cookies and login lockouts."""

import json
import os
import secrets
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# The security variables production sets (docker-compose.yml's defaults, .env.example).
PRODUCTION = {
    "DEBUG": "false",
    "ALLOWED_HOSTS": "procurement.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SECURE_PROXY_SSL_HEADER": "true",
    "SESSION_COOKIE_AGE": "43200",
    "AXES_FAILURE_LIMIT": "5",
    "AXES_COOLOFF_MINUTES": "15",
    "TRUSTED_PROXY_COUNT": "1",
}


def check_deploy(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_passes_with_production_settings() -> None:
    env = dict(os.environ)
    env.update(PRODUCTION)
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    result = check_deploy(env)
    assert result.returncode == 0, result.stdout + result.stderr


def test_fails_on_the_embedded_defaults() -> None:
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in PRODUCTION and name != "SECRET_KEY"
    }
    result = check_deploy(env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    # The development key, no HSTS, no HTTPS redirect, cookies sent over plain HTTP.
    for issue in ("security.W009", "security.W004", "security.W008", "security.W012"):
        assert issue in output, output
    assert "security.W016" in output, output


def test_fails_on_a_broker_visibility_timeout_below_the_longest_task() -> None:
    env = dict(os.environ)
    env.update(PRODUCTION)
    env["SECRET_KEY"] = secrets.token_urlsafe(50)
    env["CELERY_BROKER_VISIBILITY_TIMEOUT"] = "600"  # send_alert_email waits up to 600 s
    result = check_deploy(env)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output
    assert "orders.W001" in output, output
    assert "CELERY_BROKER_VISIBILITY_TIMEOUT (600 s)" in output, output


SETTINGS_AS_JSON = """
import json, django
django.setup()
from django.conf import settings as s
print(json.dumps({
    "session_secure": s.SESSION_COOKIE_SECURE,
    "session_name": s.SESSION_COOKIE_NAME,
    "session_httponly": s.SESSION_COOKIE_HTTPONLY,
    "session_age": s.SESSION_COOKIE_AGE,
    "csrf_secure": s.CSRF_COOKIE_SECURE,
    "csrf_name": s.CSRF_COOKIE_NAME,
    "csrf_httponly": s.CSRF_COOKIE_HTTPONLY,
    "hsts": s.SECURE_HSTS_SECONDS,
    "backend": s.AUTHENTICATION_BACKENDS[0],
    "last_middleware": s.MIDDLEWARE[-1],
    "failure_limit": s.AXES_FAILURE_LIMIT,
    "cooloff_seconds": s.AXES_COOLOFF_TIME.total_seconds(),
    "proxies": s.TRUSTED_PROXY_COUNT,
}))
"""


def test_production_sessions_cookies_and_lockout() -> None:
    env = dict(os.environ)
    env.update(PRODUCTION, SECRET_KEY=secrets.token_urlsafe(50), AXES_FAILURE_LIMIT="7")
    env.update(AXES_COOLOFF_MINUTES="30", DJANGO_SETTINGS_MODULE="procurement.settings")
    result = subprocess.run(
        [sys.executable, "-c", SETTINGS_AS_JSON],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "session_secure": True,
        # __Host-: the browser keeps them only if Secure, host-only and for every path.
        "session_name": "__Host-sessionid",
        "session_httponly": True,
        "session_age": 12 * 60 * 60,
        "csrf_secure": True,
        "csrf_name": "__Host-csrftoken",
        "csrf_httponly": True,
        "hsts": 31536000,
        "backend": "axes.backends.AxesStandaloneBackend",
        "last_middleware": "axes.middleware.AxesMiddleware",
        "failure_limit": 7,
        "cooloff_seconds": 30 * 60,
        "proxies": 1,
    }
