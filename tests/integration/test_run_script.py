"""README command (1), for real: install, migrate, load demo data, print the login, serve the
admin and the dashboard: quietly, the login last, links on the port it serves, DEBUG off."""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from datetime import date
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_script_serves_the_admin_with_demo_orders(tmp_path: Path) -> None:
    port = _free_port()
    drop = {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SITE_URL", "EMAIL_URL", "LOG_LEVEL"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    env |= {
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}",
        "EMAIL_FILE_PATH": str(tmp_path / "mail"),
    }
    log = tmp_path / "run.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, log.read_text()
            # Up once it answers and has printed the login, its last words.
            try:
                urllib.request.urlopen(f"{base}/admin/login/", timeout=2)
                if "  password: " in log.read_text():
                    break
            except OSError:
                pass
            assert time.monotonic() < deadline, log.read_text()
            time.sleep(0.5)
        output = log.read_text()
        assert "Demo data loaded" in output
        # A quiet start: no email printed, no warnings, no server banner; the login last,
        # its link on the port served.
        for noise in ("Content-Type:", "Subject:", "WARNING", "Warning", "Django version"):
            assert noise not in output, output
        *_, address, user_line, password_line = output.strip().splitlines()
        assert address == f"Admin login: {base}/admin/", output
        username = re.fullmatch(r"  user: +(\S+)", user_line)[1]
        password = re.fullmatch(r"  password: +(\S+)", password_line)[1]
        # The demo's alert emails are files to read later, their links on the same port.
        mails = [path.read_text() for path in (tmp_path / "mail").iterdir()]
        assert any(f"{base}/admin/orders/purchaseorder/" in mail for mail in mails)
        assert not any("127.0.0.1:8000" in mail for mail in mails)

        # DEBUG is off: an unknown address gets the app's page, not Django's debug page.
        with pytest.raises(urllib.error.HTTPError) as error:
            urllib.request.urlopen(f"{base}/no-such-page/")
        assert error.value.code == 404
        page = error.value.read().decode()
        assert "Page not found" in page
        assert "URLconf" not in page

        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{base}/admin/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"username": username, "password": password, "csrfmiddlewaretoken": token}
        opener.open(f"{base}/admin/login/?next=/admin/", urlencode(form).encode())
        orders = opener.open(f"{base}/admin/orders/purchaseorder/").read().decode()
        # The demo is dated up to today: its orders carry this year's number or last year's.
        year = int(re.search(r"PO-(\d{4})-0412", orders)[1])
        assert date.today().year - 1 <= year <= date.today().year
        assert "Pacific Silicon Distribution" in orders
        # The same login opens the dashboard, its charts' script served from static files.
        dashboard = opener.open(f"{base}/").read().decode()
        assert "Slipping orders" in dashboard
        assert f"PO-{year}-0412" in dashboard
        chart_js = opener.open(f"{base}/static/vendor/chart.js/chart.umd.min.js").read()
        assert chart_js.startswith(b"/*!\n * Chart.js v4.6.1")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)


def test_run_script_refuses_a_port_already_in_use(tmp_path: Path) -> None:
    """Another server on the port would answer for it: the script says so and stops, before
    printing a login that is not the server's."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "SITE_URL"}}
        env |= {"PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}"}
        done = subprocess.run(
            ["bash", "scripts/run.sh"],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"Port {port} is already in use" in done.stderr
    assert "password:" not in done.stdout
