"""End-to-end: the app as production runs it (gunicorn, DEBUG off, collected static files,
migrations, demo data), in its own process on a free loopback port, driven by Debian's
Chromium through Playwright.

The app gets its own database: a fresh one on the PostgreSQL server of the test run when
DATABASE_URL points at PostgreSQL (scripts/test.sh runs these tests in that pass only),
otherwise a SQLite file. The test process never touches that database through the ORM:
Playwright's sync API runs an event loop in this thread, and Django refuses ORM calls there.
Expected figures come from `manage.py shell` in the app's environment instead.

Set SCREENSHOTS_DIR to keep a PNG of each page (scripts/screenshots.sh does, for
docs/screenshots/).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# As the machine's own check starts it: no sandbox (root in a container), no GPU, and no
# background connections to Google's services, which a closed network refuses.
CHROMIUM_ARGS = [
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PASSWORD = "gpu-shortage-" + secrets.token_hex(4)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    reason = ""
    if os.environ.get("SKIP_E2E"):
        reason = os.environ["SKIP_E2E"]
    elif not Path(CHROMIUM).exists() and not os.environ.get("E2E_REQUIRED"):
        reason = f"no Chromium at {CHROMIUM}: apt-get install chromium (scripts/test.sh does)"
    for item in items:
        if Path(item.fspath).is_relative_to(here):
            item.add_marker(pytest.mark.e2e)
            if reason:
                item.add_marker(pytest.mark.skip(reason=reason))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class App:
    """The served app: its URL, its environment (for `manage.py` against its database) and
    the demo buyer who logs in."""

    base_url: str
    env: dict[str, str]
    log: Path
    username: str = "alice"
    password: str = PASSWORD
    outputs: list[str] = field(default_factory=list)

    def manage(self, *args: str, timeout: float = 300) -> str:
        result = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        command = " ".join(args)
        assert result.returncode == 0, f"manage.py {command}:\n{result.stdout}{result.stderr}"
        return result.stdout

    def query(self, code: str) -> Any:
        """Run `code` (which sets `result`) in `manage.py shell` on the app's database and
        return `result` decoded from JSON."""
        script = f"import json\n{code}\nprint('RESULT=' + json.dumps(result))"
        out = self.manage("shell", "--no-imports", "-c", script)
        line = next(line for line in out.splitlines() if line.startswith("RESULT="))
        return json.loads(line.removeprefix("RESULT="))


def _postgres_database(url: str, name: str) -> tuple[str, Any]:
    """Create database `name` on the server of `url`; return its URL and a function that
    drops it."""
    import psycopg

    parts = urlsplit(url)
    admin = urlunsplit(parts._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')

    def drop() -> None:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    return urlunsplit(parts._replace(path=f"/{name}")), drop


SETUP_BUYER = """
from django.contrib.auth import get_user_model
alice = get_user_model().objects.get(username="alice")
alice.set_password({password!r})
alice.save()
result = alice.pk
"""


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> Iterator[App]:
    """Migrate, collect static files, load the demo data, give the demo buyer Alice a password
    and (again, as an operator would) the Buyer role, and serve with gunicorn until the
    module's tests are done. Buyers see other buyers' orders read-only by default
    (BUYERS_SEE_ALL_ORDERS), which the "All buyers" filter of the session relies on."""
    tmp = tmp_path_factory.mktemp("e2e")
    drop = None
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        database_url, drop = _postgres_database(url, f"procurement_e2e_{secrets.token_hex(4)}")
    else:
        database_url = f"sqlite:///{tmp / 'e2e.sqlite3'}"
    port = _free_port()
    unset = {"CELERY_BROKER_URL", "EMAIL_URL", "DEBUG", "SECRET_KEY"}
    env = {k: v for k, v in os.environ.items() if k not in unset} | {
        "DATABASE_URL": database_url,
        "DEBUG": "false",
        "SECRET_KEY": secrets.token_urlsafe(40),
        "STATIC_ROOT": str(tmp / "static"),
        "ALLOWED_HOSTS": "127.0.0.1,localhost",
        "SITE_URL": f"http://127.0.0.1:{port}",
        "CONN_MAX_AGE": "0",
        "LOG_LEVEL": "WARNING",
    }
    app = App(base_url=f"http://127.0.0.1:{port}", env=env, log=tmp / "gunicorn.log")
    process = None
    try:
        app.manage("migrate", "--no-input", "-v", "0")
        app.manage("collectstatic", "--no-input", "-v", "0")
        app.manage("load_demo", "--as-written")  # the tests quote the story's own dates
        app.query(SETUP_BUYER.format(password=PASSWORD))
        app.manage("grant_role", "alice@gpu-buyers.example", "buyer")
        with app.log.open("w") as out:
            process = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "gunicorn",
                    "procurement.wsgi:application",
                    "--bind",
                    f"127.0.0.1:{port}",
                    "--workers",
                    "2",
                    "--access-logfile",
                    "-",
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, app.log.read_text()
            try:
                urllib.request.urlopen(f"{app.base_url}/accounts/login/", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, app.log.read_text()
                time.sleep(0.3)
        yield app
    finally:
        if process is not None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        if drop is not None:
            drop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    """Headless Debian Chromium; never a browser Playwright downloads. Module-scoped so the
    event loop it runs is gone before other modules' tests use the ORM."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS
        )
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser: Any, app: App) -> Iterator[Any]:
    """A fresh browser context (no cookies) with downloads allowed; any script error or
    failed request on a page of the app fails the test."""
    context = browser.new_context(
        base_url=app.base_url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(15_000)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"script error: {error}"))
    page.on(
        "console",
        lambda message: (
            problems.append(f"console {message.type}: {message.text}")
            if message.type == "error"
            else None
        ),
    )
    page.on(
        "response",
        lambda response: (
            problems.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    yield page
    context.close()
    assert not problems, problems


@pytest.fixture
def screenshot() -> Any:
    """`screenshot(page, "dashboard")` writes SCREENSHOTS_DIR/dashboard.png when set."""
    directory = os.environ.get("SCREENSHOTS_DIR")

    def take(page: Any, name: str) -> None:
        if directory:
            Path(directory).mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(Path(directory) / f"{name}.png"), full_page=True)

    return take
