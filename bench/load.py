"""Benchmark: the app served by gunicorn under load (wrk), on a database of N orders.

Run from the project root with DATABASE_URL pointing at a throwaway PostgreSQL database
(bench/load.sh starts one, and installs wrk):

    python bench/load.py [--orders 100000] [--duration 20] [--connections 4] [--workers 3]
                         [--baseline REV [--baseline-orders M]]

It reuses bench/scan_slips.py's data: N open orders, one line and Q quotes each, seeded, then
runs the slip scan so orders carry alerts, and VACUUM ANALYZE. It creates a superuser, collects
the static files and starts gunicorn on a free loopback port with production's settings (DEBUG
off, WhiteNoise, persistent database connections, 3 sync workers, an access log), logs in with
a POST to /admin/login/ as a browser would, and then:

- drives each page (the order changelist: page 1, filtered and searched; the dashboard; the
  lead-time charts; the vendor scorecards; the prices; a filtered orders CSV export from the
  changelist and from the dashboard) with wrk for a bounded time on C connections, and reads
  requests/s and the 50th/95th/99th percentile latency from a Lua script's done() hook;
- downloads the CSV export of every order a few times, one request after another (one long
  streamed request: concurrency would measure the queue, not the export), for time and bytes;
- renders each page once in this process with Django's test client and counts its queries.

Targets (check_targets): every HTML page's p95 within its limit for the run's size (P95_LIMITS),
and every response a 200 (the Lua script counts the rest: wrk itself counts only statuses
>= 400, so a redirect to the login page would pass) with no socket errors or timeouts. It prints
a Markdown table and exits 1 when any target failed, 2 when it refuses the database (anything but
PostgreSQL, or orders it did not create: it deletes every slip alert).

With --baseline REV it first runs that revision's own bench/load.sh in a temporary git worktree
and prints its figures beside this code's; the baseline's failures are shown, not counted.
"""

from __future__ import annotations

import argparse
import http.client
import http.cookiejar
import os
import platform
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import verdicts

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
ADMIN_USER = "bench-admin"
CHANGELIST = "/admin/orders/purchaseorder/"
# What wrk runs in each thread and once at the end. wrk counts only statuses >= 400 as errors
# ("Non-2xx or 3xx responses"), so response() counts everything but a 200 itself; done() prints
# the percentiles wrk's --latency leaves out (95th) in one line the parser reads.
WRK_SCRIPT = """\
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  not_200 = 0
  bad_status = 0
end

function response(status, headers, body)
  if status ~= 200 then
    not_200 = not_200 + 1
    bad_status = status
  end
end

function done(summary, latency, requests)
  local not_200, bad_status = 0, 0
  for _, thread in ipairs(threads) do
    not_200 = not_200 + thread:get("not_200")
    if thread:get("bad_status") ~= 0 then bad_status = thread:get("bad_status") end
  end
  local e = summary.errors
  io.write(string.format(
    "LOADBENCH requests=%d duration_us=%d bytes=%d p50_us=%d p95_us=%d p99_us=%d " ..
    "max_us=%d not_200=%d bad_status=%d connect=%d read=%d write=%d status=%d timeout=%d\\n",
    summary.requests, summary.duration, summary.bytes,
    math.floor(latency:percentile(50)), math.floor(latency:percentile(95)),
    math.floor(latency:percentile(99)), latency.max,
    not_200, bad_status, e.connect, e.read, e.write, e.status, e.timeout))
end
"""


# --- wrk's output ------------------------------------------------------------------------------


@dataclass(frozen=True)
class WrkResult:
    """One wrk run: figures from its own report and from the Lua script's LOADBENCH line."""

    requests: int
    seconds: float
    requests_per_second: float
    bytes: int
    p50_ms: float
    p95_ms: float
    p99_ms: float
    max_ms: float
    not_200: int  # every response that was not a 200, redirects included
    bad_status: int  # one such status, 0 when none
    non_2xx_3xx: int  # wrk's own count: statuses >= 400
    socket_errors: dict[str, int] = field(default_factory=dict)  # connect, read, write, timeout

    @property
    def errors(self) -> int:
        return self.not_200 + sum(self.socket_errors.values())

    def problems(self) -> list[str]:
        """What makes this run a failure, in words; empty when every request got a 200."""
        found = []
        if self.requests == 0:
            found.append("no request completed within the duration")
        if self.not_200:
            hint = (
                " (a redirect: the session cookie was refused?)"
                if self.bad_status
                in {
                    301,
                    302,
                    303,
                    307,
                    308,
                }
                else ""
            )
            found.append(f"{self.not_200} responses not 200, e.g. {self.bad_status}{hint}")
        found += [f"{count} socket {kind} errors" for kind, count in self.socket_errors.items()]
        return found


_SOCKET_ERRORS = re.compile(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)")
_NON_2XX = re.compile(r"Non-2xx or 3xx responses: (\d+)")
_RATE = re.compile(r"Requests/sec:\s+([\d.]+)")
_LUA = re.compile(r"^LOADBENCH (.*)$", re.M)


def parse_wrk(output: str) -> WrkResult:
    """Read wrk's report (with our Lua script's LOADBENCH line). Raises ValueError when the
    line or the rate is missing: wrk failed before it measured anything."""
    lua = _LUA.search(output)
    rate = _RATE.search(output)
    if lua is None or rate is None:
        raise ValueError(f"not a wrk report with the LOADBENCH line:\n{output}")
    figures = {key: int(value) for key, value in (p.split("=") for p in lua[1].split())}
    # The Lua line and wrk's own "Socket errors" line agree; wrk prints its line only when
    # there were errors, the Lua line always.
    socket_errors = {k: figures[k] for k in ("connect", "read", "write", "timeout") if figures[k]}
    if match := _SOCKET_ERRORS.search(output):
        for kind, count in zip(
            ("connect", "read", "write", "timeout"), match.groups(), strict=True
        ):
            if int(count):
                socket_errors[kind] = int(count)
    non_2xx = _NON_2XX.search(output)
    return WrkResult(
        requests=figures["requests"],
        seconds=figures["duration_us"] / 1e6,
        requests_per_second=float(rate[1]),
        bytes=figures["bytes"],
        p50_ms=figures["p50_us"] / 1000,
        p95_ms=figures["p95_us"] / 1000,
        p99_ms=figures["p99_us"] / 1000,
        max_ms=figures["max_us"] / 1000,
        not_200=figures["not_200"],
        bad_status=figures["bad_status"],
        non_2xx_3xx=int(non_2xx[1]) if non_2xx else figures["status"],
        socket_errors=socket_errors,
    )


# --- Data and the served app -------------------------------------------------------------------


def production_env(*, workdir: Path, port: int) -> None:
    """The environment of the production image (see .env.example), set in this process so the
    set-up here and gunicorn see the same settings: DEBUG off, WhiteNoise's manifest storage,
    persistent connections. No broker: nothing here enqueues work for a worker."""
    for name in ("CELERY_BROKER_URL", "EMAIL_URL", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE"):
        os.environ.pop(name, None)
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "procurement.settings",
            "DEBUG": "false",
            "SECRET_KEY": secrets.token_urlsafe(40),
            "STATIC_ROOT": str(workdir / "static"),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "SITE_URL": f"http://127.0.0.1:{port}",
            "CONN_MAX_AGE": "60",
            "LOG_LEVEL": "WARNING",
        }
    )


def prepare_database(n_orders: int, n_quotes: int, password: str) -> dict[str, int]:
    """Migrate, replace earlier benchmark data with N fresh orders, scan them for slips,
    VACUUM ANALYZE, and create the superuser the load logs in as. Returns the vendor id the
    filtered targets use, and counts."""
    sys.path.insert(0, str(BENCH))
    import scan_slips  # sets Django up
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    from orders.alerts import scan_orders
    from orders.models import Vendor

    scan_slips.check_postgres()
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    scan_slips.check_only_benchmark_data()
    scan_slips.delete_benchmark_data()
    print(f"  migrate + delete earlier benchmark data: {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    counts = scan_slips.generate(n_orders, n_quotes)
    print(f"  {counts} in {time.perf_counter() - started:.1f} s", flush=True)
    started = time.perf_counter()
    alerts = sum(scan_orders(today=scan_slips.TODAY).new_alerts.values())
    scan_slips.analyze()
    print(
        f"  slip scan: {alerts:,} alerts; + VACUUM ANALYZE: {time.perf_counter() - started:.1f} s"
    )
    user, _ = get_user_model().objects.update_or_create(
        username=ADMIN_USER,
        defaults={"email": "bench-admin@example.com", "is_staff": True, "is_superuser": True},
    )
    user.set_password(password)
    user.save()
    call_command("collectstatic", interactive=False, verbosity=0)
    vendor = Vendor.objects.get(name=scan_slips.VENDORS[0][0])
    return {"vendor_id": vendor.pk, "alerts": alerts, **counts}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop_group(process: subprocess.Popen[Any], *, timeout: float) -> None:
    """SIGTERM to the process's group (started with its own session), SIGKILL after
    `timeout` seconds if it is still there."""
    os.killpg(process.pid, signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()


@contextmanager
def gunicorn(*, port: int, workers: int, log: Path, pidfile: Path) -> Iterator[str]:
    """Serve the app as the production image does (its entrypoint's command line, on loopback)
    until the block ends; yields the base URL. Its own session, so the whole group is stopped.
    The pid goes to `pidfile` for bench/load.sh's trap, should this process be killed."""
    base_url = f"http://127.0.0.1:{port}"
    command = [
        sys.executable,
        "-m",
        "gunicorn",
        "procurement.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(workers),
        "--access-logfile",
        "-",
    ]
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    pidfile.write_text(str(process.pid))
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"gunicorn exited:\n{log.read_text()}")
            try:
                urllib.request.urlopen(f"{base_url}/accounts/login/", timeout=2).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"gunicorn silent for 60 s:\n{log.read_text()}") from None
                time.sleep(0.3)
        yield base_url
    finally:
        stop_group(process, timeout=30)
        pidfile.unlink(missing_ok=True)


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def login(base_url: str, username: str, password: str) -> str:
    """Log in through the admin's login form (GET for the CSRF cookie, POST the form) and
    return the Cookie header of the session: sessionid and csrftoken."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), _NoRedirect)
    url = f"{base_url}/admin/login/"
    opener.open(url, timeout=30).close()
    csrf = next(c.value for c in jar if c.name == "csrftoken")
    form = urllib.parse.urlencode(
        {
            "csrfmiddlewaretoken": csrf,
            "username": username,
            "password": password,
            "next": CHANGELIST,
        }
    ).encode()
    request = urllib.request.Request(url, data=form, headers={"Referer": url})
    try:
        opener.open(request, timeout=30).close()
        raise RuntimeError("login: the admin answered the POST with its form again (refused)")
    except urllib.error.HTTPError as redirect:  # a 302 to `next` when the login succeeded
        if redirect.code != 302 or redirect.headers["Location"] != CHANGELIST:
            raise RuntimeError(f"login: {redirect.code} {redirect.headers['Location']}") from None
    cookies = {c.name: c.value for c in jar}
    if "sessionid" not in cookies:
        raise RuntimeError("login: no session cookie")
    return f"sessionid={cookies['sessionid']}; csrftoken={cookies['csrftoken']}"


@dataclass(frozen=True)
class Fetched:
    status: int  # 0: no HTTP response (connection closed or reset, timed out)
    seconds: float
    bytes: int
    lines: int
    content_type: str = ""
    location: str = ""
    error: str = ""


def fetch(url: str, cookie: str, *, timeout: float = 600) -> Fetched:
    """One GET, redirects not followed, the body read to the end in 1 MB pieces. A broken
    connection (gunicorn kills a worker that overran its timeout) is a result, not a crash."""
    opener = urllib.request.build_opener(_NoRedirect)
    request = urllib.request.Request(url, headers={"Cookie": cookie})
    started = time.perf_counter()
    size = lines = 0
    try:
        with opener.open(request, timeout=timeout) as response:
            while piece := response.read(1 << 20):
                size += len(piece)
                lines += piece.count(b"\n")
            status, headers = response.status, response.headers
    except urllib.error.HTTPError as error:
        status, headers = error.code, error.headers
    except (OSError, http.client.HTTPException) as error:
        reason = getattr(error, "reason", None) or error
        seconds = time.perf_counter() - started
        return Fetched(0, seconds, size, lines, error=f"{type(reason).__name__}: {reason}")
    return Fetched(
        status=status,
        seconds=time.perf_counter() - started,
        bytes=size,
        lines=lines,
        content_type=headers.get("Content-Type", ""),
        location=headers.get("Location", ""),
    )


# --- Targets -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str
    path: str
    content_type: str = "text/html"

    @property
    def html(self) -> bool:
        """An HTML page: the p95 targets apply to these, not to the CSV downloads."""
        return self.content_type == "text/html"


def targets(vendor_id: int) -> list[Target]:
    """The pages driven with wrk, then the CSV exports. "One vendor" is one of five, a fifth of
    the orders. The slipping filters read each order's stored slip (orders.schedules), so the
    changelist's count and the dashboard's page follow the number of slipping orders."""
    vendor = f"vendor__id__exact={vendor_id}"
    return [
        Target("changelist, page 1", CHANGELIST),
        Target("changelist: one vendor, slipping", f"{CHANGELIST}?{vendor}&slipping=yes"),
        Target("changelist: search `BENCH-00012`", f"{CHANGELIST}?q=BENCH-00012"),
        Target("dashboard, all buyers", "/?vendor=&gpu_model=&buyer="),
        Target("lead-time charts", "/lead-times/"),
        Target("vendor scorecards", "/vendors/"),
        Target("prices", "/prices/"),
        Target(
            "orders CSV (changelist): one vendor", f"{CHANGELIST}export-csv/?{vendor}", "text/csv"
        ),
        Target(
            "slipping orders CSV (dashboard): one vendor",
            f"/slipping-orders.csv?vendor={vendor_id}&gpu_model=&buyer=",
            "text/csv",
        ),
    ]


@dataclass(frozen=True)
class Measured:
    """One target's wrk run: its figures (None when wrk did not run or printed none) and what
    made it fail (empty when every request got a 200)."""

    target: Target
    result: WrkResult | None
    problems: tuple[str, ...] = ()


PAGES_HEADER = (
    "| target | requests | requests/s | p50 ms | p95 ms | p99 ms | KB/response | errors "
    "| queries |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
)


def page_row(measured: Measured, queries: str) -> str:
    """The target's line of the summary table; with no figures, its problems in `errors`."""
    name, result = measured.target.name, measured.result
    if result is None:
        return f"| {name} | - | - | - | - | - | - | {'; '.join(measured.problems)} | {queries} |"
    per_response = result.bytes / result.requests / 1024 if result.requests else 0
    return (
        f"| {name} | {result.requests:,} | {result.requests_per_second:,.2f} | "
        f"{ms(result.p50_ms)} | {ms(result.p95_ms)} | {ms(result.p99_ms)} | "
        f"{per_response:,.0f} | {result.errors} | {queries} |"
    )


def count_queries(pages: Sequence[Target]) -> dict[str, str]:
    """The queries of one request of each page: rendered once in this process with Django's
    test client as the bench superuser, under CaptureQueriesContext (the session and user
    look-ups included, as under gunicorn; a streamed CSV read to its end). Called after the wrk
    runs, so this process's database work never overlaps a measurement."""
    from django.conf import settings
    from django.contrib.auth import get_user_model
    from django.db import connection
    from django.test import Client
    from django.test.utils import CaptureQueriesContext

    # ALLOWED_HOSTS is production's (127.0.0.1, localhost), not the test client's "testserver".
    client = Client(HTTP_HOST="127.0.0.1")
    counts: dict[str, str] = {}
    try:
        client.force_login(get_user_model().objects.get(username=ADMIN_USER))
        for target in pages:
            with CaptureQueriesContext(connection) as captured:
                try:
                    response = client.get(target.path, secure=settings.SECURE_SSL_REDIRECT)
                    if response.streaming:
                        for _ in response.streaming_content:
                            pass
                        response.close()
                except Exception as error:  # a figure missing, not a crashed benchmark
                    counts[target.name] = f"error: {type(error).__name__}: {error}"
                    continue
            status = "" if response.status_code == 200 else f" (status {response.status_code})"
            counts[target.name] = f"{len(captured)}{status}"
    finally:
        connection.close()
    return counts


def check_page(base_url: str, target: Target, cookie: str) -> tuple[Fetched, list[str]]:
    """One request: a 200 of the right type (not a redirect to the login page)."""
    got = fetch(base_url + target.path, cookie)
    problems = []
    if got.error:
        problems.append(f"no response after {got.seconds:.1f} s ({got.error})")
    elif got.status != 200:
        where = f" to {got.location}" if got.location else ""
        hint = " (the session cookie was refused)" if "login" in got.location else ""
        problems.append(f"status {got.status}{where}{hint}")
    elif not got.content_type.startswith(target.content_type):
        problems.append(f"content type {got.content_type!r}, expected {target.content_type}")
    return got, problems


def warm_up(base_url: str, target: Target, cookie: str, workers: int) -> list[str]:
    """As many requests at once as there are workers, so each has likely served the page once
    (its templates loaded, its database connection open) before the measurement. Each must
    pass check_page."""
    with ThreadPoolExecutor(workers) as pool:
        checked = list(pool.map(lambda _: check_page(base_url, target, cookie), range(workers)))
    for got, _ in checked:
        print(f"  warm-up: {got.status or got.error}, {got.seconds:.2f} s, {got.bytes:,} bytes")
    return sorted({problem for _, problems in checked for problem in problems})


def run_wrk(
    url: str, cookie: str, *, duration: int, connections: int, timeout: int, script: Path
) -> tuple[WrkResult | None, str]:
    command = [
        "wrk",
        f"--threads={min(2, connections)}",
        f"--connections={connections}",
        f"--duration={duration}s",
        f"--timeout={timeout}s",
        "--latency",
        f"--script={script}",
        f"--header=Cookie: {cookie}",
        url,
    ]
    done = subprocess.run(command, capture_output=True, text=True, timeout=duration + timeout + 60)
    output = done.stdout + done.stderr
    try:
        return parse_wrk(output), output
    except ValueError:
        return None, output


def load_average() -> float:
    return float(Path("/proc/loadavg").read_text().split()[0])


def ms(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def tail(log: Path, lines: int = 30) -> str:
    return "\n    ".join(log.read_text(errors="replace").splitlines()[-lines:])


# --- The code before: --baseline --------------------------------------------------------------


@dataclass(frozen=True)
class Before:
    """One target's figures in the baseline's summary, or why it has none."""

    p50_ms: float | None = None
    p95_ms: float | None = None
    failed: str = ""


def _cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().removeprefix("|").removesuffix("|").split("|")]


def _number(cell: str) -> float:
    return float(cell.replace(",", ""))


def parse_summary(output: str) -> dict[str, Before]:
    """The per-target table of a load benchmark's output (after its last "== Summary"), read
    by its header's column names, so that any revision's table reads: target -> p50 and p95
    (ms), or why the target failed: the problems its row shows in place of figures, no request
    completed, or its count of errors (responses not 200, broken sockets). Empty when there is
    no such table."""
    start = output.rfind("== Summary")
    if start < 0:
        return {}
    header: list[str] = []
    found: dict[str, Before] = {}
    for line in output[start:].splitlines():
        if not header:
            if line.startswith("| target | requests |"):
                header = _cells(line)
            continue
        if not line.startswith("|"):
            break
        row = dict(zip(header, _cells(line), strict=False))
        name = row.get("target", "")
        if set(name) <= set("-: "):  # the line under the header
            continue
        try:
            if row.get("p95 ms", "-") == "-":
                found[name] = Before(failed=row.get("errors") or "no figures")
            elif _number(row["requests"]) == 0:
                found[name] = Before(failed="no request completed within the duration")
            elif (errors := int(_number(row.get("errors", "0")))) > 0:
                found[name] = Before(failed=f"{errors} errors in {row['requests']} requests")
            else:
                found[name] = Before(_number(row["p50 ms"]), _number(row["p95 ms"]))
        except (KeyError, ValueError):
            found[name] = Before(failed=f"unreadable row: {line.strip()}")
    return found


@dataclass(frozen=True)
class Baseline:
    """The baseline revision's own load benchmark: its figures by target name, or why it has
    none at all (`failed`)."""

    revision: str
    orders: int
    commit: str = ""
    status: int | None = None  # its exit status; None when it did not run
    figures: dict[str, Before] = field(default_factory=dict)
    failed: str = ""

    def before(self, name: str) -> Before | None:
        """A target's figures; None when that revision has no such target."""
        if self.failed:
            return Before(failed=self.failed)
        return self.figures.get(name)


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)


def stream(command: list[str], *, cwd: Path, prefix: str) -> tuple[int, str]:
    """Run a command in its own session, its output printed as it comes (each line prefixed)
    and returned; if this process is stopped first, the command's whole group is stopped."""
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    process = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        start_new_session=True,
    )
    lines = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            print(prefix + line, end="", flush=True)
            lines.append(line)
        return process.wait(), "".join(lines)
    finally:
        if process.poll() is None:
            stop_group(process, timeout=60)


def run_baseline(args: argparse.Namespace) -> Baseline:
    """Run revision --baseline's own bench/load.sh (its own virtualenv and PostgreSQL) in a
    temporary git worktree, removed after, with this run's options at --baseline-orders
    orders, and read its summary. Whatever goes wrong is the baseline's `failed`, never a
    crash of this run."""
    orders = args.baseline_orders or args.orders
    print(f"\n== Baseline: {args.baseline}'s own bench/load.sh, {orders:,} orders", flush=True)
    resolved = _git("rev-parse", "--verify", "--short", f"{args.baseline}^{{commit}}")
    if resolved.returncode:
        why = f"no revision {args.baseline!r} ({resolved.stderr.strip()})"
        return Baseline(args.baseline, orders, failed=why)
    commit = resolved.stdout.strip()
    parent = Path(tempfile.mkdtemp(prefix="load-baseline-"))
    tree = parent / "tree"
    try:
        added = _git("worktree", "add", "--detach", str(tree), commit)
        if added.returncode:
            why = f"git worktree add: {added.stderr.strip()}"
            return Baseline(args.baseline, orders, commit, failed=why)
        if not (tree / "bench" / "load.sh").exists():
            return Baseline(args.baseline, orders, commit, failed=f"{commit}: no bench/load.sh")
        options = {
            "--orders": orders,
            "--quotes": args.quotes,
            "--duration": args.duration,
            "--connections": args.connections,
            "--workers": args.workers,
            "--timeout": args.timeout,
            "--full-exports": args.full_exports,
        }
        command = ["bash", "bench/load.sh", *(f"{k}={v}" for k, v in options.items())]
        try:
            status, output = stream(command, cwd=tree, prefix="  [baseline] ")
        except OSError as error:
            return Baseline(args.baseline, orders, commit, failed=f"{command[0]}: {error}")
        figures = parse_summary(output)
        why = "" if figures else f"exit {status} before its summary table (its output above)"
        return Baseline(args.baseline, orders, commit, status, figures, why)
    finally:
        _git("worktree", "remove", "--force", str(tree))
        shutil.rmtree(parent, ignore_errors=True)
        _git("worktree", "prune")


def speed_up(before: Before | None, now: WrkResult | None) -> str:
    """The baseline's p95 over this code's: "-" unless both measured every request cleanly."""
    if before is None or before.failed or before.p95_ms is None:
        return "-"
    if now is None or now.requests == 0 or now.errors or now.p95_ms <= 0:
        return "-"
    return f"{before.p95_ms / now.p95_ms:,.1f}x"


def comparison(baseline: Baseline, orders: int, measured: Sequence[Measured]) -> str:
    """The before/after table: per target the baseline's p50 / p95 (or why it has none, or "-"
    when that revision has no such target), this code's, and the speed-up of the p95."""
    status = "did not run" if baseline.status is None else f"exit {baseline.status}"
    lines = [
        f"== Before/after: {baseline.revision} ({baseline.commit or 'unresolved'}, "
        f"{baseline.orders:,} orders, {status}) and this code ({orders:,} orders)",
        "",
    ]
    if baseline.orders != orders:
        lines += ["The two ran at different sizes: the speed-up compares them as they are.", ""]
    lines += [
        "| target | before p50 / p95 ms | now p50 / p95 ms | speed-up (p95) |",
        "| --- | ---: | ---: | ---: |",
    ]
    for page in measured:
        before = baseline.before(page.target.name)
        if before is None:
            then = "-"
        elif before.failed:
            then = f"failed: {before.failed}"
        else:
            then = f"{ms(before.p50_ms or 0)} / {ms(before.p95_ms or 0)}"
        result = page.result
        if result is None or result.requests == 0:
            now = f"failed: {'; '.join(page.problems)}"
        else:
            now = f"{ms(result.p50_ms)} / {ms(result.p95_ms)}"
            if result.errors:
                now += f" ({result.errors} errors)"
        lines.append(f"| {page.target.name} | {then} | {now} | {speed_up(before, result)} |")
    return "\n".join(lines)


# --- Main --------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders (N)")
    parser.add_argument("--quotes", type=int, default=3, help="quotes per order")
    parser.add_argument("--duration", type=int, default=20, help="seconds of wrk per target")
    parser.add_argument("--connections", type=int, default=4, help="wrk connections")
    parser.add_argument("--workers", type=int, default=3, help="gunicorn sync workers")
    parser.add_argument("--timeout", type=int, default=60, help="wrk's request timeout (s)")
    parser.add_argument(
        "--full-exports", type=int, default=3, help="sequential downloads of the full export"
    )
    parser.add_argument("--workdir", type=Path, help="for static files and logs (default: temp)")
    parser.add_argument(
        "--baseline",
        metavar="REV",
        help="first run this git revision's own bench/load.sh, for a before/after table",
    )
    parser.add_argument(
        "--baseline-orders",
        type=int,
        metavar="M",
        help="orders for the baseline's run (default: --orders)",
    )
    args = parser.parse_args()
    if args.baseline_orders is not None and not args.baseline:
        parser.error("--baseline-orders needs --baseline")
    if args.baseline_orders is not None and args.baseline_orders < 200:
        parser.error("need --baseline-orders >= 200")
    if min(args.duration, args.connections, args.workers, args.full_exports) < 1:
        parser.error("--duration, --connections, --workers and --full-exports must be >= 1")
    if args.orders < 200:
        parser.error("need --orders >= 200 (the PO search target needs BENCH-0000120..199)")
    if shutil.which("wrk") is None:
        sys.exit("load: no wrk: apt-get install wrk (bench/load.sh does)")
    # A SIGTERM (load.sh's trap, a CI timeout) runs the finally blocks that stop gunicorn.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="load-bench-"))
    try:
        baseline = run_baseline(args) if args.baseline else None
        sys.exit(run(args, workdir, baseline))
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


@dataclass
class Bench:
    """What every measurement needs: the options, where gunicorn runs, the session cookie."""

    args: argparse.Namespace
    workdir: Path
    port: int
    password: str
    cookie: str = ""
    log: Path = Path("/dev/null")  # gunicorn's log of the latest target
    failures: list[str] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)

    @contextmanager
    def served(self, label: str) -> Iterator[str]:
        """A fresh gunicorn for each target: requests wrk left in flight when it stopped
        finish (gunicorn's graceful stop waits for them) before the next target starts.
        Logs in on the first start; the session lives in the database, so it carries over."""
        self.log = log = self.workdir / f"gunicorn-{label}.log"
        with gunicorn(
            port=self.port, workers=self.args.workers, log=log, pidfile=self.workdir / "pid"
        ) as base_url:
            if not self.cookie:
                self.cookie = login(base_url, ADMIN_USER, self.password)
            try:
                yield base_url
            finally:
                self.loads.append(load_average())

    def fail(self, name: str, problems: list[str]) -> None:
        self.failures.append(f"{name}: {'; '.join(problems)}")
        print(f"  FAILED: {'; '.join(problems)}\n  gunicorn's log:\n    {tail(self.log)}")

    def measure(self, index: int, target: Target, script: Path) -> Measured:
        """Warm up, run wrk, and return what it measured."""
        print(f"\n== {target.name}: {target.path}", flush=True)
        result = None
        with self.served(f"{index}") as base_url:
            problems = warm_up(base_url, target, self.cookie, self.args.workers)
            if not problems:
                result, output = run_wrk(
                    base_url + target.path,
                    self.cookie,
                    duration=self.args.duration,
                    connections=self.args.connections,
                    timeout=self.args.timeout,
                    script=script,
                )
                print("  " + output.strip().replace("\n", "\n  "), flush=True)
                problems = result.problems() if result else ["wrk failed (output above)"]
                if result is not None and result.requests == 0:
                    problems.append(f"a longer --duration than {self.args.duration} s may help")
        if problems:
            self.fail(target.name, problems)
        return Measured(target, result, tuple(problems))

    def download(self, target: Target) -> list[Fetched]:
        """The full export, one request after another on an idle server."""
        print(f"\n== {target.name}, one request after another: {target.path}", flush=True)
        downloads = []
        with self.served("full-export") as base_url:
            for _ in range(self.args.full_exports):
                got, problems = check_page(base_url, target, self.cookie)
                print(
                    f"  {got.status}: {got.seconds:.2f} s, {got.bytes:,} bytes, "
                    f"{got.lines:,} lines",
                    flush=True,
                )
                downloads.append(got)
                if problems:
                    self.fail(target.name, problems)
                    break
        return downloads


def run(args: argparse.Namespace, workdir: Path, baseline: Baseline | None = None) -> int:
    bench = Bench(args, workdir, port=free_port(), password=secrets.token_urlsafe(16))
    production_env(workdir=workdir, port=bench.port)
    print("\n== Setup", flush=True)
    prepared = prepare_database(args.orders, args.quotes, bench.password)

    import django
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    connection.close()  # the benchmark process stays off the database from here on
    wrk = subprocess.run(["wrk", "--version"], capture_output=True, text=True).stdout
    print(
        f"  PostgreSQL {server}, Django {django.get_version()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs, {wrk.split(' [')[0].strip()}\n"
        f"  gunicorn: {args.workers} sync workers, DEBUG off, on 127.0.0.1:{bench.port}; wrk: "
        f"{args.connections} connections, {args.duration} s per target, timeout {args.timeout} s",
        flush=True,
    )
    script = workdir / "report.lua"
    script.write_text(WRK_SCRIPT)
    bench.loads.append(load_average())

    pages = targets(prepared["vendor_id"])
    measured = [bench.measure(i, target, script) for i, target in enumerate(pages, start=1)]
    everything = Target("orders CSV, every order", f"{CHANGELIST}export-csv/", "text/csv")
    downloads = bench.download(everything)
    print("\n== Queries per request (one request of each target, Django's test client)")
    queries = count_queries(pages)
    for name, count in queries.items():
        print(f"  {name}: {count}")

    print(
        f"\n== Summary: {args.orders:,} orders x {args.quotes} quotes, "
        f"{prepared['alerts']:,} alerts; gunicorn {args.workers} sync workers; wrk "
        f"{args.connections} connections for {args.duration} s per target; load average "
        f"(1 min) {min(bench.loads):.2f} to {max(bench.loads):.2f}\n"
    )
    print(PAGES_HEADER)
    print("\n".join(page_row(m, queries.get(m.target.name, "-")) for m in measured))
    times = sorted(d.seconds for d in downloads)
    print(
        f"\n| sequential download | requests | median s | each (s) | bytes | lines |\n"
        f"| --- | ---: | ---: | --- | ---: | ---: |\n"
        f"| {everything.name} | {len(downloads)} | {times[len(times) // 2]:.2f} | "
        f"{', '.join(f'{d.seconds:.2f}' for d in downloads)} | {downloads[-1].bytes:,} | "
        f"{downloads[-1].lines:,} |"
    )
    print()
    if baseline is not None:
        print(comparison(baseline, args.orders, measured) + "\n")
    return check_targets(args.orders, measured, bench.failures)


@dataclass(frozen=True)
class P95Limits:
    """The p95 limits (ms) of the HTML pages from `from_orders` orders up: `every_page_ms` for
    each, `pages_ms` tighter ones for named pages."""

    from_orders: int
    every_page_ms: float
    pages_ms: tuple[tuple[str, float], ...] = ()


# The HTML pages' p95 targets by the size of the run: the last row whose from_orders is at most
# --orders applies. The CSV downloads have none: their time follows the rows they hold.
P95_LIMITS = (
    P95Limits(from_orders=0, every_page_ms=500),
    P95Limits(from_orders=1_000_000, every_page_ms=1000, pages_ms=(("changelist, page 1", 300),)),
)


def p95_limit(orders: int, page: str) -> float:
    """The p95 limit (ms) of an HTML page in a run of `orders` orders."""
    limits = [row for row in P95_LIMITS if row.from_orders <= orders][-1]
    return min([limits.every_page_ms, *(limit for name, limit in limits.pages_ms if name == page)])


def check_targets(orders: int, measured: Sequence[Measured], failures: list[str]) -> int:
    """Each HTML page's p95 against its limit (a page with no figure misses it) and every
    response a 200, each failure listed: the table through bench/verdicts.py, which returns 1
    when any target was missed, else 0."""
    if failures:
        print("FAILED:\n  " + "\n  ".join(failures), file=sys.stderr)
    lines = []
    for page in measured:
        if not page.target.html:
            continue
        limit = p95_limit(orders, page.target.name)
        name = f"{page.target.name}: p95 <= {limit:,.0f} ms"
        if page.result is None or page.result.requests == 0:
            lines.append(verdicts.Target(name, "no figure", False))
        else:
            p95 = page.result.p95_ms
            lines.append(verdicts.Target(name, f"{ms(p95)} ms", p95 <= limit))
    lines.append(
        verdicts.Target(
            "every response a 200; no socket errors or timeouts",
            f"{len(failures)} failure(s)" if failures else "all 200, none",
            not failures,
        )
    )
    return verdicts.report(lines)


if __name__ == "__main__":
    main()
