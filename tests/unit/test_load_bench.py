"""bench/load.py's reading of wrk's report: the figures, and every kind of failure it must not
let pass (a redirect to the login page above all, which wrk itself does not count)."""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

LOAD_PY = Path(__file__).resolve().parents[2] / "bench" / "load.py"


@pytest.fixture(scope="module")
def load() -> ModuleType:
    if str(LOAD_PY.parent) not in sys.path:  # as when the script runs: it imports verdicts
        sys.path.insert(0, str(LOAD_PY.parent))
    spec = importlib.util.spec_from_file_location("bench_load", LOAD_PY)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered first: dataclasses look their module up in sys.modules.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


# Printed by Debian's wrk 4.1.0 with --latency and the bench's Lua script (a 2,000-order run).
CLEAN = """\
Running 5s test @ http://127.0.0.1:46677/lead-times/
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency   642.41ms  126.35ms   1.03s    79.31%
    Req/Sec     3.24      2.05    10.00     89.66%
  Latency Distribution
     50%  623.30ms
     75%  702.81ms
     90%  769.99ms
     99%    1.03s
  29 requests in 5.03s, 409.48KB read
Requests/sec:      5.77
Transfer/sec:     81.45KB
LOADBENCH requests=29 duration_us=5027454 bytes=419311 p50_us=623305 p95_us=823465 \
p99_us=1029505 max_us=1029505 not_200=0 bad_status=0 connect=0 read=0 write=0 status=0 timeout=0
"""

# A report with failures: the same shape with the two lines wrk adds when it counted socket
# errors or statuses >= 400 (their wording as in wrk's src/wrk.c), and the Lua line to match.
FAILING = """\
Running 5s test @ http://127.0.0.1:46677/
  2 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.85s   491.55ms   2.46s    50.00%
    Req/Sec     3.75      4.43    10.00     75.00%
  Latency Distribution
     50%    2.06s
     75%    2.39s
     90%    2.46s
     99%    2.46s
  8 requests in 5.03s, 525.93KB read
  Socket errors: connect 0, read 3, write 0, timeout 2
  Non-2xx or 3xx responses: 2
Requests/sec:      1.59
Transfer/sec:    104.51KB
LOADBENCH requests=8 duration_us=5032348 bytes=538552 p50_us=2059539 p95_us=2455949 \
p99_us=2455949 max_us=2455949 not_200=2 bad_status=502 connect=0 read=3 write=0 status=2 timeout=2
"""


def test_reads_the_figures(load: ModuleType) -> None:
    result = load.parse_wrk(CLEAN)
    assert result.requests == 29
    assert result.requests_per_second == pytest.approx(5.77)
    assert result.seconds == pytest.approx(5.027454)
    assert result.bytes == 419_311
    assert (result.p50_ms, result.p95_ms, result.p99_ms) == pytest.approx(
        (623.305, 823.465, 1029.505)
    )
    assert result.max_ms == pytest.approx(1029.505)
    assert result.errors == 0
    assert result.problems() == []


def test_counts_failed_responses_and_broken_sockets(load: ModuleType) -> None:
    result = load.parse_wrk(FAILING)
    assert result.non_2xx_3xx == 2
    assert result.not_200 == 2
    assert result.socket_errors == {"read": 3, "timeout": 2}
    assert result.errors == 7
    problems = result.problems()
    assert "2 responses not 200, e.g. 502" in problems
    assert "3 socket read errors" in problems
    assert "2 socket timeout errors" in problems


def test_a_redirect_fails_though_wrk_does_not_count_it(load: ModuleType) -> None:
    """wrk counts only statuses >= 400: a login redirect shows in the Lua line alone (seen with
    Debian's wrk against a server answering 302: no "Non-2xx or 3xx" line, not_200 counted)."""
    redirected = CLEAN.replace("not_200=0 bad_status=0", "not_200=29 bad_status=302")
    result = load.parse_wrk(redirected)
    assert result.non_2xx_3xx == 0
    assert result.problems() == [
        "29 responses not 200, e.g. 302 (a redirect: the session cookie was refused?)"
    ]


def test_nothing_completed_is_a_failure(load: ModuleType) -> None:
    idle = CLEAN.replace("LOADBENCH requests=29", "LOADBENCH requests=0")
    assert load.parse_wrk(idle).problems() == ["no request completed within the duration"]


@pytest.mark.parametrize(
    "output",
    [
        "",
        "unable to connect to 127.0.0.1:1 Connection refused\n",
        CLEAN.replace("LOADBENCH", "SOMETHING"),
        CLEAN.replace("Requests/sec", "Requests"),
    ],
)
def test_refuses_output_without_the_figures(load: ModuleType, output: str) -> None:
    with pytest.raises(ValueError, match="LOADBENCH"):
        load.parse_wrk(output)


# The end of a load benchmark's output as the code before the stored schedule printed it (its
# summary table has no queries column): a clean page, a page whose warm-up failed, one where no
# request completed, one with errors, and no scorecards or prices targets.
OLD_OUTPUT = """\
== slipping orders CSV (dashboard): one vendor: /slipping-orders.csv?vendor=1&gpu_model=&buyer=
  FAILED: 7 socket timeout errors

== Summary: 5,000 orders x 3 quotes, 7,496 alerts; gunicorn 3 sync workers; wrk 4 connections \
for 3 s per target; load average (1 min) 2.41 to 3.86

| target | requests | requests/s | p50 ms | p95 ms | p99 ms | KB/response | errors |
| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |
| changelist, page 1 | 61 | 20.10 | 180 | 402 | 455 | 60 | 0 |
| changelist: one vendor, slipping | 20 | 6.58 | 980 | 1,210 | 1,300 | 58 | 0 |
| changelist: search `BENCH-00012` | 70 | 23.10 | 150 | 350 | 390 | 35 | 0 |
| dashboard, all buyers | - | - | - | - | - | - | status 500; a second problem |
| lead-time charts | 0 | 0.00 | 0.0 | 0.0 | 0.0 | 0 | 0 |
| orders CSV (changelist): one vendor | 40 | 13.20 | 250 | 600 | 700 | 90 | 0 |
| slipping orders CSV (dashboard): one vendor | 8 | 1.59 | 2,060 | 2,456 | 2,456 | 66 | 7 |

| sequential download | requests | median s | each (s) | bytes | lines |
| --- | ---: | ---: | --- | ---: | ---: |
| orders CSV, every order | 3 | 1.20 | 1.10, 1.20, 1.30 | 1,234,567 | 5,001 |

| target | measured | result |
| --- | --- | --- |
| every response a 200; no socket errors or timeouts | 3 failure(s) | MISS |
"""


def test_reads_the_old_summary_table(load: ModuleType) -> None:
    before = load.parse_summary(OLD_OUTPUT)
    assert before["changelist, page 1"] == load.Before(180.0, 402.0)
    assert before["changelist: one vendor, slipping"] == load.Before(980.0, 1210.0)
    assert before["dashboard, all buyers"].failed == "status 500; a second problem"
    assert before["lead-time charts"].failed == "no request completed within the duration"
    assert before["slipping orders CSV (dashboard): one vendor"].failed == (
        "7 errors in 8 requests"
    )
    # The tables after it (downloads, verdicts) are not targets.
    assert "orders CSV, every order" not in before
    assert "every response a 200; no socket errors or timeouts" not in before
    assert len(before) == 7


def test_reads_this_codes_summary_table(load: ModuleType) -> None:
    """The table this code prints (with queries) reads back the same way."""
    page = load.Measured(load.Target("prices", "/prices/"), load.parse_wrk(CLEAN))
    failed = load.Measured(load.Target("lead-time charts", "/lead-times/"), None, ("status 500",))
    output = "\n".join(
        ["== Summary", "", load.PAGES_HEADER, load.page_row(page, "4"), load.page_row(failed, "-")]
    )
    before = load.parse_summary(output)
    assert before["prices"] == load.Before(623.0, 823.0)
    assert before["lead-time charts"].failed == "status 500"


@pytest.mark.parametrize(
    "output",
    [
        "",
        "== Setup\n  Traceback ...\n",
        OLD_OUTPUT.split("| target")[0],
        OLD_OUTPUT.replace("== Summary", "== Something else"),
    ],
)
def test_no_summary_table_no_figures(load: ModuleType, output: str) -> None:
    assert load.parse_summary(output) == {}


def _measured(load: ModuleType, name: str, p50_us: int, p95_us: int, not_200: int = 0) -> Any:
    output = (
        CLEAN.replace("p50_us=623305", f"p50_us={p50_us}")
        .replace("p95_us=823465", f"p95_us={p95_us}")
        .replace("not_200=0", f"not_200={not_200}")
    )
    return load.Measured(load.Target(name, "/"), load.parse_wrk(output))


def test_before_and_after_table(load: ModuleType) -> None:
    baseline = load.Baseline("90009d4", 5_000, "90009d4", 1, load.parse_summary(OLD_OUTPUT))
    now = [
        _measured(load, "changelist, page 1", 40_000, 100_500),
        _measured(load, "changelist: one vendor, slipping", 40_000, 100_500, not_200=2),
        _measured(load, "dashboard, all buyers", 90_000, 120_000),
        _measured(load, "lead-time charts", 50_000, 60_000),
        _measured(load, "vendor scorecards", 30_000, 45_000),
        load.Measured(load.Target("prices", "/prices/"), None, ("wrk failed",)),
    ]
    table = load.comparison(baseline, 5_000, now)
    assert "90009d4 (90009d4, 5,000 orders, exit 1) and this code (5,000 orders)" in table
    assert "| changelist, page 1 | 180 / 402 | 40.0 / 100 | 4.0x |" in table
    # No speed-up where this code's run had errors.
    assert "| changelist: one vendor, slipping | 980 / 1,210 | 40.0 / 100 (2 errors) | - |" in table
    assert "| dashboard, all buyers | failed: status 500; a second problem | 90.0 / 120 | - |" in (
        table
    )
    assert (
        "| lead-time charts | failed: no request completed within the duration | 50.0 / 60.0 | - |"
        in table
    )
    # Targets the old code did not have.
    assert "| vendor scorecards | - | 30.0 / 45.0 | - |" in table
    assert "| prices | - | failed: wrk failed | - |" in table
    assert "different sizes" not in table


def test_a_failed_baseline_fails_every_before_column(load: ModuleType) -> None:
    baseline = load.Baseline("90009d4", 1_000, "90009d4", 1, failed="exit 1 before its summary")
    table = load.comparison(baseline, 5_000, [_measured(load, "prices", 1_000, 2_000)])
    assert "| prices | failed: exit 1 before its summary | 1.0 / 2.0 | - |" in table
    assert "different sizes" in table


def _git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout


@pytest.fixture
def repo(load: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A repository whose bench/load.sh prints its arguments and the old summary, exiting 1."""
    root = tmp_path / "repo"
    (root / "bench").mkdir(parents=True)
    (root / "bench" / "old.txt").write_text(OLD_OUTPUT)
    (root / "bench" / "load.sh").write_text(
        'echo "args: $*"\necho "pwd: $PWD"\ncat "$(dirname "$0")/old.txt"\nexit 1\n'
    )
    _git(root, "init", "-q")
    _git(root, "add", ".")
    _git(root, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "old")
    monkeypatch.setattr(load, "ROOT", root)
    return root


def _args(**options: Any) -> argparse.Namespace:
    defaults = dict(
        baseline="HEAD",
        baseline_orders=None,
        orders=5_000,
        quotes=3,
        duration=3,
        connections=4,
        workers=3,
        timeout=60,
        full_exports=3,
    )
    return argparse.Namespace(**(defaults | options))


def test_the_baseline_runs_its_own_bench_in_a_worktree_removed_after(
    load: ModuleType, repo: Path, capsys: Any
) -> None:
    baseline = load.run_baseline(_args(baseline_orders=1_000))
    assert baseline.status == 1  # its own MISS: figures all the same
    assert baseline.failed == ""
    assert baseline.orders == 1_000
    assert baseline.figures["changelist, page 1"] == load.Before(180.0, 402.0)
    out = capsys.readouterr().out
    assert (
        "  [baseline] args: --orders=1000 --quotes=3 --duration=3 --connections=4 --workers=3 "
        "--timeout=60 --full-exports=3\n" in out
    )
    ran_in = out.split("[baseline] pwd: ")[1].split("\n")[0]
    assert ran_in != str(repo)
    assert not Path(ran_in).exists()
    assert _git(repo, "worktree", "list").count("\n") == 1


def test_a_baseline_that_cannot_run_is_a_failure_not_a_crash(
    load: ModuleType, repo: Path, capsys: Any
) -> None:
    unknown = load.run_baseline(_args(baseline="no-such-revision"))
    assert unknown.failed.startswith("no revision 'no-such-revision'")
    assert unknown.status is None

    (repo / "bench" / "load.sh").write_text("echo 'Traceback: boom'\nexit 1\n")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "broken")
    broken = load.run_baseline(_args())
    assert broken.status == 1
    assert broken.failed == "exit 1 before its summary table (its output above)"
    assert broken.before("changelist, page 1") == load.Before(failed=broken.failed)
    assert _git(repo, "worktree", "list").count("\n") == 1
