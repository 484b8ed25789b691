"""bench/load.py's reading of wrk's report: the figures, and every kind of failure it must not
let pass (a redirect to the login page above all, which wrk itself does not count)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

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
