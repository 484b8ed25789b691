"""The production stack (docker-compose.yml, Dockerfile, docker/entrypoint.sh, .env.example)
stays in step with procurement/settings.py and README.md. Text checks only: no Docker needed."""

import os
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
SETTINGS = ROOT / "procurement" / "settings.py"
ENTRYPOINT = ROOT / "docker" / "entrypoint.sh"
DOCKERFILE = ROOT / "Dockerfile"
ENV_EXAMPLE = ROOT / ".env.example"
README = ROOT / "README.md"

SERVICES = ("postgres", "redis", "web", "worker", "beat", "mailpit")
DJANGO_SERVICES = ("web", "worker", "beat")

# env.str("NAME", ...), env.bool(, env.int(, env.float(, env.list(, env.db(, env.email_url(,
# env.path(... and env("NAME"); the name may sit on the next line.
ENV_READ = re.compile(r"""\benv(?:\.\w+)?\(\s*["']([A-Z][A-Z0-9_]*)["']""")
# ${NAME}, ${NAME:-default}, ${NAME:?message}; $$ is compose's escape for a literal $.
COMPOSE_VAR = re.compile(r"(?<!\$)\$\{([A-Za-z_][A-Za-z0-9_]*)")


def compose() -> dict[str, Any]:
    return yaml.safe_load(COMPOSE.read_text())


def service(name: str) -> dict[str, Any]:
    return compose()["services"][name]


def environment(name: str) -> dict[str, str]:
    """A service's environment, whether written as a mapping or as a list of NAME=value."""
    env = service(name).get("environment") or {}
    if isinstance(env, list):
        return dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {key: "" if value is None else str(value) for key, value in env.items()}


def command(name: str) -> list[str]:
    cmd = service(name).get("command")
    return cmd.split() if isinstance(cmd, str) else list(cmd or [])


def strings(node: Any) -> list[str]:
    """Every key and value of the parsed YAML (so comments are left out)."""
    if isinstance(node, dict):
        return [s for key, value in node.items() for s in strings(key) + strings(value)]
    if isinstance(node, list):
        return [s for item in node for s in strings(item)]
    return [node] if isinstance(node, str) else []


def settings_env_names() -> set[str]:
    return set(ENV_READ.findall(SETTINGS.read_text()))


def test_settings_regex_finds_the_variables() -> None:
    # Guards the regex: if it matched nothing, the test below would pass vacuously.
    names = settings_env_names()
    assert {
        "SECRET_KEY",
        "DATABASE_URL",
        "EMAIL_URL",
        "DEFAULT_FROM_EMAIL",  # env.str( on one line, the name on the next
        "SLIP_LEAD_TIME_FACTOR",  # env.float
        "SECURE_PROXY_SSL_HEADER",
    } <= names


def test_services_exist() -> None:
    assert set(SERVICES) <= set(compose()["services"])


@pytest.mark.parametrize("name", DJANGO_SERVICES)
def test_django_services_get_every_setting_variable(name: str) -> None:
    missing = settings_env_names() - set(environment(name))
    assert not missing, f"{name} lacks {sorted(missing)}"


@pytest.mark.parametrize("name", DJANGO_SERVICES)
def test_django_services_use_the_stack(name: str) -> None:
    env = environment(name)
    assert env["DATABASE_URL"].startswith("postgres://")
    assert env["DATABASE_URL"].endswith("@postgres:5432/${POSTGRES_DB:-procurement}")
    assert env["CELERY_BROKER_URL"] == "redis://redis:6379/0"
    assert "mailpit:1025" in env["EMAIL_URL"]
    depends = service(name)["depends_on"]
    for dependency in ("postgres", "redis"):
        assert depends[dependency]["condition"] == "service_healthy"


@pytest.mark.parametrize(
    ("name", "default"),
    [
        ("DEBUG", "false"),
        ("SECURE_SSL_REDIRECT", "true"),
        ("SESSION_COOKIE_SECURE", "true"),
        ("CSRF_COOKIE_SECURE", "true"),
        ("SECURE_HSTS_SECONDS", "31536000"),
        ("SECURE_HSTS_INCLUDE_SUBDOMAINS", "true"),
        ("SECURE_HSTS_PRELOAD", "true"),
        ("SECURE_PROXY_SSL_HEADER", "true"),
        ("SESSION_COOKIE_AGE", "43200"),
        ("TRUSTED_PROXY_COUNT", "1"),  # the TLS proxy in front of web
    ],
)
def test_production_defaults(name: str, default: str) -> None:
    for svc in DJANGO_SERVICES:
        assert environment(svc)[name] == f"${{{name}:-{default}}}", svc


def test_postgres_has_healthcheck_and_named_volume() -> None:
    postgres = service("postgres")
    assert "pg_isready" in str(postgres["healthcheck"]["test"])
    named = {volume.split(":", 1)[0] for volume in postgres["volumes"]}
    assert "postgres-data" in named
    assert "postgres-data" in (compose().get("volumes") or {})


def test_redis_has_healthcheck() -> None:
    assert "redis-cli ping" in " ".join(service("redis")["healthcheck"]["test"])


def test_redis_keeps_the_queue_across_restarts() -> None:
    """An append-only file fsynced every second, on the named volume: queued tasks survive a
    restart or a crash of Redis (tests/integration/test_fault_broker_restart.py runs Redis
    with this very command)."""
    redis = service("redis")
    options = " ".join(redis["command"])
    assert options.startswith("redis-server ")
    assert "--appendonly yes" in options
    assert "--appendfsync everysec" in options
    assert any(volume.startswith("redis-data:/data") for volume in redis["volumes"])


def is_required_reference(value: str, name: str) -> bool:
    """`${NAME:?message}`: compose refuses to start without it, and there is no default."""
    return re.fullmatch(rf"\$\{{{name}:\?[^}}]+\}}", value) is not None


def test_no_literal_secrets() -> None:
    for svc in DJANGO_SERVICES:
        env = environment(svc)
        assert is_required_reference(env["SECRET_KEY"], "SECRET_KEY"), env["SECRET_KEY"]
        assert "${POSTGRES_PASSWORD:?" in env["DATABASE_URL"]
    password = environment("postgres")["POSTGRES_PASSWORD"]
    assert is_required_reference(password, "POSTGRES_PASSWORD"), password


@pytest.mark.parametrize("name", DJANGO_SERVICES)
def test_role_commands(name: str) -> None:
    assert command(name) == [name]


def test_web_port_and_mailpit_ui() -> None:
    assert "${WEB_BIND:-127.0.0.1}:${WEB_PORT:-8000}:8000" in service("web")["ports"]
    assert "127.0.0.1:${MAILPIT_UI_PORT:-8025}:8025" in service("mailpit")["ports"]


def test_services_named_in_readme_exist() -> None:
    if not README.exists():
        pytest.skip("no README.md")
    text = README.read_text()
    services = set(compose()["services"])
    for name in SERVICES:
        if f"`{name}`" in text:
            assert name in services, f"README.md names `{name}`, docker-compose.yml lacks it"


def test_env_example_lists_every_compose_variable() -> None:
    example = {
        line.split("=", 1)[0].strip()
        for line in ENV_EXAMPLE.read_text().splitlines()
        if "=" in line and not line.lstrip().startswith("#")
    }
    used = {name for text in strings(compose()) for name in COMPOSE_VAR.findall(text)}
    missing = used - example
    assert not missing, f".env.example lacks {sorted(missing)}"


def test_entrypoint_handles_roles_and_is_executable() -> None:
    text = ENTRYPOINT.read_text()
    assert text.startswith("#!/bin/sh\n")
    assert "set -eu" in text
    for role in ("web", "worker", "beat"):
        assert re.search(rf"^\s*{role}\)", text, re.MULTILINE), role
    assert "check --deploy --fail-level WARNING" in text
    assert "migrate --noinput" in text
    assert "exec gunicorn procurement.wsgi:application" in text
    assert "django_celery_beat.schedulers:DatabaseScheduler" in text
    assert os.access(ENTRYPOINT, os.X_OK)


def test_entrypoint_execs_other_commands() -> None:
    result = subprocess.run(
        [str(ENTRYPOINT), "echo", "hello", "there"],
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert result.stdout == "hello there\n"


def test_dockerfile_installs_pinned_runtime_packages() -> None:
    text = DOCKERFILE.read_text()
    install = re.search(
        r"^RUN pip install --no-cache-dir -c requirements\.lock \.(.*)$", text, re.M
    )
    assert install, "no pinned install of the project"
    assert "[dev]" not in install.group(0)
    assert re.search(r"^USER app$", text, re.M)
    assert re.search(r"^RUN SECRET_KEY=build-only python manage.py collectstatic", text, re.M)
    assert re.search(r"^CMD \[\"web\"\]$", text, re.M)
