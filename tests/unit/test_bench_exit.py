"""Every benchmark exits 1 when it misses a target, so that a MISS cannot pass unseen: each
one's target check (through bench/verdicts.py) and each shell wrapper passing the status on."""

from __future__ import annotations

import argparse
import importlib.util
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType, SimpleNamespace
from typing import Any

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
NAN = float("nan")  # a figure the run did not produce


def _bench(name: str) -> ModuleType:
    if str(BENCH) not in sys.path:  # as when the script runs: its directory comes first
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location(f"bench_{name}", BENCH / f"{name}.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def verdicts() -> ModuleType:
    return _bench("verdicts")


def test_a_miss_makes_the_exit_status_1(verdicts: ModuleType, capsys: Any) -> None:
    met = verdicts.Target("fast", "1 s", True)
    shown = verdicts.Target("faster than before (no target)", "2x", None)
    missed = verdicts.Target("small", "900 MB", False)

    assert verdicts.report([met, shown]) == 0
    assert verdicts.report([met, missed, shown]) == 1

    out, err = capsys.readouterr()
    assert "| fast | 1 s | PASS |" in out
    assert "| faster than before (no target) | 2x | - |" in out
    assert "| small | 900 MB | MISS |" in out
    assert "MISS (1): small" in err


def _run(seconds: float, orders: int = 100_000, per_batch: float = 3.0) -> SimpleNamespace:
    return SimpleNamespace(
        seconds=seconds, orders=orders, rate=orders / seconds, per_batch=per_batch
    )


def test_scan_slips_exits_1_on_a_missing_or_missed_figure(capsys: Any) -> None:
    scan_slips = _bench("scan_slips")
    args = argparse.Namespace(orders=100_000)
    good = dict(
        full=_run(5.0),
        full_quiet=_run(4.0),
        subset=_run(0.5, 10_000),
        quarter=_run(0.5, 10_000, per_batch=3.5),
        naive=_run(100.0),
        naive_quiet=_run(90.0),
        rescan_quiet=_run(1.5),
    )
    assert scan_slips.check_targets(args, SimpleNamespace(**good)) == 0

    unlogged = good | {"subset": _run(0.5, 10_000, per_batch=NAN)}  # queries not counted
    assert scan_slips.check_targets(args, SimpleNamespace(**unlogged)) == 1
    slow = good | {"full_quiet": _run(11.0)}
    assert scan_slips.check_targets(args, SimpleNamespace(**slow)) == 1
    slow_rescan = good | {"rescan_quiet": _run(2.5)}
    assert scan_slips.check_targets(args, SimpleNamespace(**slow_rescan)) == 1
    # The missing count; the slow scan's time, and so its speed-up over the naive loop; the
    # slow rescan.
    assert capsys.readouterr().out.count("| MISS |") == 4


def _export(rate: float, rss: float = 10.0, queries: int = 4) -> SimpleNamespace:
    rows = 100_000
    return SimpleNamespace(
        rate=rate, rows=rows, seconds=rows / rate, rss_growth_mb=rss, queries=queries
    )


def test_export_orders_exits_1_on_a_missing_or_missed_figure(capsys: Any) -> None:
    export_orders = _bench("export_orders")
    args = argparse.Namespace(orders=100_000)
    good: dict[str, Any] = dict(
        full=_export(170_000),
        subset=_export(60_000),
        walk=_export(40_000),
        naive_quiet=_export(500),
        same_file=True,
        agree=True,
        imported=[_export(5_000), _export(20_000)],  # 20 s for the orders
    )
    assert export_orders.check_targets(args, **good) == 0

    no_import = good | {"imported": [_export(NAN), _export(20_000)]}
    assert export_orders.check_targets(args, **no_import) == 1
    for missed in (
        {"full": _export(140_000)},
        {"full": _export(170_000, rss=150.0)},
        {"subset": _export(60_000, queries=5)},
        {"same_file": False},
        {"agree": False},
    ):
        assert export_orders.check_targets(args, **(good | missed)) == 1, missed
    assert capsys.readouterr().out.count("| MISS |") == 6


@pytest.fixture(scope="module")
def load() -> ModuleType:
    return _bench("load")


def _page(
    load: ModuleType, name: str, p95_ms: float, *, csv: bool = False, requests: int = 40
) -> Any:
    result = load.WrkResult(
        requests=requests,
        seconds=3.0,
        requests_per_second=requests / 3,
        bytes=40_000,
        p50_ms=p95_ms / 2,
        p95_ms=p95_ms,
        p99_ms=p95_ms,
        max_ms=p95_ms,
        not_200=0,
        bad_status=0,
        non_2xx_3xx=0,
    )
    target = load.Target(name, "/", "text/csv" if csv else "text/html")
    return load.Measured(target, result)


def test_load_exits_1_on_a_failed_request(load: ModuleType, capsys: Any) -> None:
    pages = [_page(load, "lead-time charts", 100)]
    assert load.check_targets(2_000, pages, []) == 0
    assert load.check_targets(2_000, pages, ["/lead-times/: 3 timeouts"]) == 1
    out, err = capsys.readouterr()
    assert "| every response a 200; no socket errors or timeouts | 1 failure(s) | MISS |" in out
    assert "/lead-times/: 3 timeouts" in err


def test_load_p95_limits_follow_the_size_of_the_run(load: ModuleType, capsys: Any) -> None:
    def check(orders: int, name: str, p95_ms: float) -> int:
        return load.check_targets(orders, [_page(load, name, p95_ms)], [])

    # Under 1,000,000 orders: 500 ms for every HTML page, the changelist's first page included.
    assert check(100_000, "dashboard, all buyers", 500) == 0
    assert check(100_000, "dashboard, all buyers", 501) == 1
    assert check(999_999, "changelist, page 1", 450) == 0
    assert check(2_000, "prices", 600) == 1
    # From 1,000,000: 1,000 ms for every HTML page, 300 ms for the changelist's first page.
    assert check(1_000_000, "dashboard, all buyers", 900) == 0
    assert check(1_000_000, "dashboard, all buyers", 1_001) == 1
    assert check(1_000_000, "changelist, page 1", 300) == 0
    assert check(1_000_000, "changelist, page 1", 301) == 1
    out = capsys.readouterr().out
    assert "| dashboard, all buyers: p95 <= 500 ms | 501 ms | MISS |" in out
    assert "| changelist, page 1: p95 <= 300 ms | 301 ms | MISS |" in out
    assert "| dashboard, all buyers: p95 <= 1,000 ms | 900 ms | PASS |" in out


def test_load_csv_downloads_have_no_p95_target(load: ModuleType, capsys: Any) -> None:
    csv = _page(load, "orders CSV (changelist): one vendor", 5_000, csv=True)
    assert load.check_targets(100_000, [csv, _page(load, "prices", 200)], []) == 0
    assert "orders CSV" not in capsys.readouterr().out


def test_load_a_page_without_figures_misses_its_p95(load: ModuleType, capsys: Any) -> None:
    nothing_completed = _page(load, "dashboard, all buyers", 0, requests=0)
    assert load.check_targets(100_000, [nothing_completed], []) == 1
    no_wrk = load.Measured(load.Target("prices", "/prices/"), None, ("wrk failed",))
    assert load.check_targets(100_000, [no_wrk], ["prices: wrk failed"]) == 1
    out = capsys.readouterr().out
    assert "| dashboard, all buyers: p95 <= 500 ms | no figure | MISS |" in out
    assert "| prices: p95 <= 500 ms | no figure | MISS |" in out


@pytest.mark.parametrize("wrapper", sorted(p.name for p in BENCH.glob("*.sh")))
@pytest.mark.parametrize("status", [0, 1])
def test_each_shell_wrapper_exits_with_the_benchmarks_status(
    wrapper: str, status: int, tmp_path: Path
) -> None:
    """The wrapper runs against a stand-in scripts/lib.sh (the real one's shell options, no
    virtualenv or PostgreSQL) and a stand-in Python that prints and exits with `status`."""
    (tmp_path / "bench").mkdir()
    (tmp_path / "scripts").mkdir()
    (tmp_path / "bench" / wrapper).write_text((BENCH / wrapper).read_text())
    real_lib = (BENCH.parent / "scripts" / "lib.sh").read_text().splitlines()
    options = [line for line in real_lib if line.startswith("set ")]
    assert options, "scripts/lib.sh sets the shell's options"
    fake_python = tmp_path / "python"
    fake_python.write_text(f"#!/bin/sh\necho 'MISS'\nexit {status}\n")
    fake_python.chmod(0o755)
    (tmp_path / "scripts" / "lib.sh").write_text(
        "\n".join(
            [
                *options,
                f'ROOT="{tmp_path}"',
                f'PY="{fake_python}"',
                "ensure_venv() { :; }",
                "ensure_system_packages() { :; }",
                "start_postgres() { :; }",
                "stop_postgres() { :; }",
            ]
        )
        + "\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    done = subprocess.run(
        ["bash", str(tmp_path / "bench" / wrapper)],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert done.returncode == status, done.stderr
    assert "MISS" in done.stdout
