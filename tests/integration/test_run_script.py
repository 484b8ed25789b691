"""README command (1), for real: install, migrate, load demo data, print the login, serve the
admin and the dashboard."""

import os
import re
import signal
import socket
import subprocess
import time
import urllib.request
from http.cookiejar import CookieJar
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_run_script_serves_the_admin_with_demo_orders(tmp_path: Path) -> None:
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "CELERY_BROKER_URL"}}
    env |= {"PORT": str(port), "DATABASE_URL": f"sqlite:///{tmp_path / 'run.sqlite3'}"}
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
            try:
                urllib.request.urlopen(f"{base}/admin/login/", timeout=2)
                break
            except OSError:
                assert time.monotonic() < deadline, log.read_text()
                time.sleep(0.5)
        output = log.read_text()
        assert "Demo data loaded" in output
        login = re.search(r"Admin login: \S+/admin/  user: (\S+)  password: (\S+)", output)
        assert login, output

        jar = CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        page = opener.open(f"{base}/admin/login/").read().decode()
        token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
        form = {"username": login[1], "password": login[2], "csrfmiddlewaretoken": token}
        opener.open(f"{base}/admin/login/?next=/admin/", urlencode(form).encode())
        orders = opener.open(f"{base}/admin/orders/purchaseorder/").read().decode()
        assert "PO-2023-0412" in orders
        assert "Pacific Silicon Distribution" in orders
        # The same login opens the dashboard, its charts' script served from static files.
        dashboard = opener.open(f"{base}/").read().decode()
        assert "Slipping orders" in dashboard
        assert "PO-2023-0412" in dashboard
        chart_js = opener.open(f"{base}/static/vendor/chart.js/chart.umd.min.js").read()
        assert chart_js.startswith(b"/*!\n * Chart.js v4.6.1")
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
