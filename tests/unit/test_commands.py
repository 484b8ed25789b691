import os
import subprocess
import sys
from io import StringIO
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.django_db
def test_ensure_admin_prints_a_login_that_works(client, settings, tmp_path) -> None:
    settings.VAR_DIR = tmp_path
    settings.SITE_URL = "http://127.0.0.1:9000"
    out = StringIO()
    call_command("ensure_admin", stdout=out)
    lines = out.getvalue().strip().splitlines()
    assert lines[:2] == ["Admin login: http://127.0.0.1:9000/admin/", "  user:     admin"]
    assert lines[2].startswith("  password: ")
    password = lines[2].rsplit(" ", 1)[-1]
    # Through the admin's login page (django-axes needs the request a real login has).
    response = client.post("/admin/login/", {"username": "admin", "password": password})
    assert response.status_code == 302
    assert client.get("/admin/").status_code == 200

    out = StringIO()
    call_command("ensure_admin", stdout=out)  # again: same login, still one user
    assert out.getvalue().strip().endswith(password)
    assert get_user_model().objects.filter(username="admin", is_superuser=True).count() == 1
    assert (tmp_path / "admin-password").stat().st_mode & 0o077 == 0


def _settings_in_subprocess(env: dict[str, str], expression: str) -> str:
    clean = {k: v for k, v in os.environ.items() if k not in _CONFIG_VARS}
    code = (
        "import django; django.setup(); from django.conf import settings as s; "
        f"print(repr(({expression})))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        env=clean | {"DJANGO_SETTINGS_MODULE": "procurement.settings"} | env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip()


_CONFIG_VARS = {
    "DATABASE_URL",
    "CELERY_BROKER_URL",
    "EMAIL_URL",
    "DEBUG",
    "SECRET_KEY",
    "REDIS_URL",
    "EMAIL_FILE_PATH",
}


def test_embedded_default_without_environment() -> None:
    shown = _settings_in_subprocess(
        {},
        "s.DATABASES['default']['ENGINE'], s.CELERY_TASK_ALWAYS_EAGER, s.CELERY_BROKER_URL, "
        "s.EMAIL_BACKEND, s.EMAIL_FILE_PATH == str(s.VAR_DIR / 'mail'), s.DEBUG",
    )
    # Eager tasks, a broker kombu does not warn about; demo emails kept in files under var/.
    assert shown == (
        "('django.db.backends.sqlite3', True, 'memory://localhost/', "
        "'django.core.mail.backends.filebased.EmailBackend', True, False)"
    )


def test_production_services_come_from_environment() -> None:
    shown = _settings_in_subprocess(
        {
            "DATABASE_URL": "postgres://tracker:pw@db.internal:5432/procurement",
            "CELERY_BROKER_URL": "redis://redis.internal:6379/0",
            "EMAIL_URL": "smtp://mail.internal:1025",
            "ALLOWED_HOSTS": "procurement.example.com",
        },
        "s.DATABASES['default']['ENGINE'], s.DATABASES['default']['HOST'], "
        "s.CELERY_TASK_ALWAYS_EAGER, s.EMAIL_HOST, s.EMAIL_PORT, s.ALLOWED_HOSTS",
    )
    assert shown == (
        "('django.db.backends.postgresql', 'db.internal', False, 'mail.internal', 1025, "
        "['procurement.example.com'])"
    )
