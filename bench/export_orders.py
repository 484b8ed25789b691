"""Benchmark: the CSV export (manage.py export_orders / export_quotes) against a naive loop.

Run from the project root with DATABASE_URL pointing at a throwaway PostgreSQL database
(bench/run_export_orders.sh starts one):

    python bench/export_orders.py [--orders 100000] [--quotes 3] [--sample 5000]

It reuses bench/scan_slips.py's data: N open orders, one line and Q quotes each, seeded, then
runs the slip scan once so orders carry alerts (the open_alerts column has work to do). Then:

- `manage.py export_orders --output FILE` over every order, in a fresh subprocess that reports
  wall time, queries and how far its RSS rose during the export (sampled, and ru_maxrss); the
  same for `export_quotes`, and for the first N/10 orders, to show that neither the query
  count nor the memory follows the number of rows;
- the orders file as the SQLite path writes it (three queries walked in Python, which was the
  PostgreSQL export too before it became one COPY), over every order, which must be the same
  file byte for byte;
- a naive per-row ORM loop over the first S orders (queries for the line's quotes, alerts,
  vendor, buyer, GPU model), whose rows must equal the export's;
- the import of both exported files (orders, then quotes) into an empty database created next
  to the benchmark's, each in a fresh process (target: 100,000 order rows under 60 s).

It prints a Markdown summary with PASS/MISS against the targets and exits 1 if it missed any
(bench/verdicts.py), 0 if not. Like
scan_slips.py it refuses (exit 2) anything but PostgreSQL and a database holding orders it did
not create.
"""
# ruff: noqa: E402  (Django must be set up before the project's modules are imported)

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import threading
import time
from collections import deque
from dataclasses import asdict, dataclass
from datetime import date
from io import StringIO
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH.parent), str(BENCH)]
os.environ["DJANGO_SETTINGS_MODULE"] = "procurement.settings"

import django

django.setup()

# The slip scan benchmark's data generator and database checks, reused as they are.
import scan_slips
import verdicts
from django.core.management import call_command
from django.db import connection
from django.db.models import Q
from django.test.utils import CaptureQueriesContext
from scan_slips import PO_PREFIX, TODAY, analyze, check_postgres, generate, heading

from orders import exports
from orders.alerts import scan_orders
from orders.csv_format import ORDER_COLUMNS
from orders.models import PurchaseOrder, open_alert_q

# Targets (issue 5).
TARGET_ROWS_PER_SECOND = 150_000
TARGET_RSS_GROWTH_MB = 100.0


# --- One export in a fresh process ---------------------------------------------------------


@dataclass
class Export:
    label: str
    rows: int
    seconds: float
    queries: int
    rss_before_mb: float  # current RSS just before the export
    rss_max_mb: float  # the highest RSS sampled during it
    peak_before_mb: float  # ru_maxrss before and after: the kernel's high-water mark
    peak_after_mb: float
    size_mb: float

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")

    @property
    def rss_growth_mb(self) -> float:
        """How far RSS rose above where it started: the sampled maximum, or the kernel's
        high-water mark if that rose further (it sees peaks between samples)."""
        return max(self.rss_max_mb - self.rss_before_mb, self.peak_after_mb - self.peak_before_mb)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def _rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class RssSampler(threading.Thread):
    """The highest current RSS seen, sampled every 10 ms while the export runs.

    ru_maxrss alone can hide growth: the process's earlier peak (imports, setup) may be
    higher than anything the export reaches."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.max_mb = _rss_mb()
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(0.01):
            self.max_mb = max(self.max_mb, _rss_mb())

    def stop(self) -> float:
        self._done.set()
        self.join()
        return max(self.max_mb, _rss_mb())


def child(kind: str, first: int | None, output: Path) -> None:
    """Run one export and print what it measured as JSON (the parent's --child mode).

    Everything an export needs is imported and connected before the first RSS reading, so
    the growth is the export's own: rows held in memory would show up here."""
    connection.ensure_connection()
    peak_before, before = _peak_rss_mb(), _rss_mb()
    sampler = RssSampler()
    sampler.start()
    with CaptureQueriesContext(connection) as queries:
        started = time.perf_counter()
        if kind == "orders_walk":
            # The SQLite path (three queries walked in Python), here on PostgreSQL: what the
            # orders export was before it became one COPY, side by side in the same run.
            rows = exports.order_rows(PurchaseOrder.objects.all(), csv_fields=True)
            text = exports.csv_lines(rows, header=ORDER_COLUMNS, csv_fields=True)
            with open(output, "w", encoding="utf-8", newline="") as file:
                file.writelines(text)
        elif first is None:
            call_command(f"export_{kind}", output=str(output), stdout=StringIO())
        else:
            # The same writer the command uses, over the first `first` orders.
            orders = PurchaseOrder.objects.filter(po_number__lte=f"{PO_PREFIX}{first:07d}")
            write = exports.orders_csv if kind == "orders" else exports.quotes_csv
            with open(output, "w", encoding="utf-8", newline="") as file:
                file.writelines(write(orders))
        seconds = time.perf_counter() - started
    rss_max, peak_after = sampler.stop(), _peak_rss_mb()
    with open(output, encoding="utf-8", newline="") as file:
        rows = sum(1 for _ in csv.reader(file)) - 1
    scope = "every order" if first is None else f"first {first:,} orders"
    label = f"export_{kind}, {scope}"
    if kind == "orders_walk":
        label = "orders file by the Python walk (the SQLite path), every order"
    measured = Export(
        label=label,
        rows=rows,
        seconds=seconds,
        queries=len(queries.captured_queries),
        rss_before_mb=before,
        rss_max_mb=rss_max,
        peak_before_mb=peak_before,
        peak_after_mb=peak_after,
        size_mb=output.stat().st_size / 2**20,
    )
    print(json.dumps(asdict(measured)))


def run_child(kind: str, output: Path, *, repeat: int, first: int | None = None) -> Export:
    """The run with the median wall time of `repeat` (the machine is shared: one run can be
    unlucky); the others' times are printed."""
    args = [sys.executable, __file__, "--child", kind, "--output", str(output)]
    if first is not None:
        args += ["--first", str(first)]
    runs = []
    for _ in range(repeat):
        done = subprocess.run(args, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            raise SystemExit(f"export child failed (exit {done.returncode})")
        runs.append(Export(**json.loads(done.stdout.strip().splitlines()[-1])))
    runs.sort(key=lambda run: run.seconds)
    median = runs[len(runs) // 2]
    times = ", ".join(f"{run.seconds:.2f}" for run in runs)
    print(f"  {median.label}: {repeat} run(s), {times} s; the median one:")
    return median


def print_export(run: Export) -> None:
    print(f"    rows              {run.rows:>12,}")
    print(f"    wall time         {run.seconds:>12.2f} s")
    print(f"    throughput        {run.rate:>12,.0f} rows/s")
    print(f"    queries           {run.queries:>12,}  (CaptureQueriesContext)")
    print(
        f"    RSS               {run.rss_before_mb:>9.1f} -> {run.rss_max_mb:.1f} MB at most "
        f"(sampled every 10 ms)"
    )
    print(
        f"    ru_maxrss         {run.peak_before_mb:>9.1f} -> {run.peak_after_mb:.1f} MB "
        f"(growth counted: {run.rss_growth_mb:+.1f} MB)"
    )
    print(f"    file              {run.size_mb:>12.1f} MB")


# --- The naive baseline --------------------------------------------------------------------


@dataclass
class Naive:
    rows: int
    seconds: float
    queries: int | None

    @property
    def rate(self) -> float:
        return self.rows / self.seconds if self.seconds else float("inf")


def _days(end: date | None, start: date | None) -> str:
    return "" if end is None or start is None else str((end - start).days)


def naive_rows(sample: int) -> list[list[str]]:
    """What a straightforward exporter does: walk orders and lines, ask the ORM for each
    line's quotes and the order's alerts, follow foreign keys one by one."""
    rows = []
    orders = PurchaseOrder.objects.filter(po_number__startswith=PO_PREFIX).order_by("po_number")
    for order in orders[:sample]:
        codes = order.alerts.filter(open_alert_q()).values_list("code", flat=True)
        open_alerts = ";".join(sorted(set(codes)))
        for line in order.lines.order_by("id"):
            quotes = list(
                order.quotes.filter(Q(line__isnull=True) | Q(line=line)).order_by("quoted_on", "id")
            )
            first = quotes[0].delivery_date if quotes else None
            last = quotes[-1].delivery_date if quotes else None

            cells = [
                order.po_number,
                order.vendor.name,
                order.buyer.email,
                order.status,
                line.gpu_model.name,
                line.quantity,
                line.unit_price,
                order.currency,
                order.placed_on,
                order.need_by,
                first,
                last,
                _days(first, order.placed_on),
                _days(last, order.placed_on),
                _days(last, first),
                max(len(quotes) - 1, 0),
                open_alerts,
            ]
            rows.append(["" if c is None else str(c) for c in cells])
    return rows


def naive_loop(sample: int, output: Path, *, capture: bool) -> tuple[Naive, list[list[str]]]:
    started = time.perf_counter()
    if capture:
        # Django keeps only the last 9,000 logged queries; make room for all of them.
        connection.queries_log = deque(maxlen=10_000_000)
        with CaptureQueriesContext(connection) as queries:
            rows = naive_rows(sample)
    else:
        rows = naive_rows(sample)
    with open(output, "w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(ORDER_COLUMNS)
        writer.writerows(rows)
    seconds = time.perf_counter() - started
    return Naive(len(rows), seconds, len(queries.captured_queries) if capture else None), rows


# --- Import timing ---------------------------------------------------------------------------
# The files this run exported, imported into an empty database on the same server (orders,
# then quotes: a round trip), each in a fresh process. The slip checks an import queues after
# commit go to a broker, as in production (an in-memory one here), not run in the process.

TARGET_IMPORT_SECONDS = 60.0


def import_database() -> dict[str, Any]:
    """An empty, migrated database next to the benchmark's, for the import to fill."""
    import psycopg
    from psycopg import sql

    db = dict(connection.settings_dict)
    name = f"{db['NAME']}_import"
    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    with psycopg.connect(dbname="postgres", autocommit=True, **params) as admin:
        admin.execute(sql.SQL("DROP DATABASE IF EXISTS {}").format(sql.Identifier(name)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db["NAME"] = name
    return db


def import_child(kind: str, path: Path) -> None:
    """Run one import and print what it measured as JSON (the parent's --child-import mode)."""
    from orders import imports

    connection.ensure_connection()
    before = _rss_mb()
    sampler = RssSampler()
    sampler.start()
    started = time.perf_counter()
    importer = imports.orders_import if kind == "orders" else imports.quotes_import
    with path.open("rb") as content:
        report = importer(content=content, filename=path.name)
    seconds = time.perf_counter() - started
    if not report.ok:
        print("\n".join(str(error) for error in report.errors[:20]), file=sys.stderr)
        raise SystemExit(1)
    measured = Export(
        label=f"import_{kind} into an empty database",
        rows=report.rows,
        seconds=seconds,
        queries=0,
        rss_before_mb=before,
        rss_max_mb=sampler.stop(),
        peak_before_mb=0.0,
        peak_after_mb=0.0,
        size_mb=path.stat().st_size / 2**20,
    )
    print(json.dumps(asdict(measured)))


def time_import(orders_file: Path, quotes_file: Path) -> list[Export]:
    """Import the orders file, then the quotes file, into a fresh database."""
    db = import_database()
    url = (
        f"postgres://{db.get('USER') or ''}:{db.get('PASSWORD') or ''}@{db.get('HOST') or ''}:"
        f"{db.get('PORT') or ''}/{db['NAME']}"
    )
    env = {**os.environ, "DATABASE_URL": url, "CELERY_BROKER_URL": "memory://"}
    # The files are as big as --orders makes them: the import's limits are raised to fit.
    sizes = [orders_file.stat().st_size, quotes_file.stat().st_size]
    env |= {"IMPORT_MAX_BYTES": str(max(sizes)), "IMPORT_MAX_ROWS": str(sum(sizes))}
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--verbosity", "0"],
        cwd=BENCH.parent,
        env=env,
        check=True,
    )
    runs = []
    for kind, path in (("orders", orders_file), ("quotes", quotes_file)):
        done = subprocess.run(
            [sys.executable, __file__, "--child-import", kind, "--output", str(path)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if done.returncode != 0:
            print(done.stdout, done.stderr, file=sys.stderr)
            raise SystemExit(f"import child failed (exit {done.returncode})")
        run = Export(**json.loads(done.stdout.strip().splitlines()[-1]))
        print(f"  {run.label}: {run.rows:,} rows in {run.seconds:.2f} s ({run.rate:,.0f} rows/s)")
        runs.append(run)
    return runs


# --- Summary ---------------------------------------------------------------------------------


def print_summary(
    args: argparse.Namespace,
    counts: dict[str, int],
    alerts: int,
    exported: tuple[Export, Export, Export, Export],
    same_file: bool,
    naive: Naive,
    naive_quiet: Naive,
    agree: bool,
    imported: list[Export],
) -> int:
    """Print the runs and the targets; return the exit status (1 if a target was missed)."""
    heading("Summary (Markdown)")
    full, subset, _, walk = exported
    print(
        f"\n{counts['orders']:,} orders x 1 line x {args.quotes} quotes, {alerts:,} slip "
        f"alerts (scan for {TODAY.isoformat()}); each export in a fresh process, the median of "
        f"{args.repeat} runs; RSS growth = "
        "the highest RSS sampled every 10 ms during the export minus RSS before it (or the "
        "ru_maxrss growth, if larger).\n"
    )
    print("| run | rows | seconds | rows/s | queries | RSS growth | file |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in exported:
        print(
            f"| {run.label} | {run.rows:,} | {run.seconds:.2f} | {run.rate:,.0f} | "
            f"{run.queries} | {run.rss_growth_mb:+.1f} MB | {run.size_mb:.1f} MB |"
        )
    print(
        f"| naive loop, first {args.sample:,} orders | {naive.rows:,} | {naive.seconds:.2f} | "
        f"{naive.rate:,.0f} | {naive.queries:,} ({naive.queries / max(naive.rows, 1):.1f}/row) "
        "| - | - |"
    )
    print(
        f"| naive loop again, no query logging | {naive_quiet.rows:,} | "
        f"{naive_quiet.seconds:.2f} | {naive_quiet.rate:,.0f} | not logged | - | - |"
    )
    for run in imported:
        print(
            f"| {run.label} | {run.rows:,} | {run.seconds:.2f} | {run.rate:,.0f} | - | "
            f"{run.rss_growth_mb:+.1f} MB | {run.size_mb:.1f} MB |"
        )
    print()
    return check_targets(args, full, subset, walk, naive_quiet, same_file, agree, imported)


def check_targets(
    args: argparse.Namespace,
    full: Export,
    subset: Export,
    walk: Export,
    naive_quiet: Naive,
    same_file: bool,
    agree: bool,
    imported: list[Export],
) -> int:
    """The targets' table (bench/verdicts.py); 1 if any was missed, else 0."""
    scale = f" (at {args.orders:,})" if args.orders != 100_000 else ""
    orders_import = imported[0]
    return verdicts.report(
        [
            verdicts.Target(
                f"orders export at least {TARGET_ROWS_PER_SECOND:,} rows/s",
                f"{full.rate:,.0f} rows/s ({full.rows:,} rows in {full.seconds:.2f} s)",
                full.rate >= TARGET_ROWS_PER_SECOND,
            ),
            verdicts.Target(
                f"peak RSS growth under {TARGET_RSS_GROWTH_MB:g} MB for 100,000 rows{scale}",
                f"{full.rss_growth_mb:+.1f} MB ({subset.rss_growth_mb:+.1f} MB for "
                f"{subset.rows:,} rows)",
                full.rss_growth_mb < TARGET_RSS_GROWTH_MB,
            ),
            verdicts.Target(
                "query count independent of size",
                f"{full.queries} for {full.rows:,} rows, {subset.queries} for {subset.rows:,}",
                full.queries == subset.queries,
            ),
            verdicts.Target(
                "faster than the naive loop (no target)",
                f"{full.rate / naive_quiet.rate:,.0f}x ({full.rate:,.0f} vs "
                f"{naive_quiet.rate:,.0f} rows/s without query logging)",
                None,
            ),
            verdicts.Target(
                "faster than the Python walk (no target); the same file byte for byte",
                f"{full.rate / walk.rate:.1f}x ({walk.rate:,.0f} rows/s); the same file: "
                f"{'yes' if same_file else 'NO'}",
                same_file,
            ),
            verdicts.Target(
                "same rows as the naive loop on its sample", "yes" if agree else "NO", agree
            ),
            verdicts.Target(
                f"import of 100,000 order rows under {TARGET_IMPORT_SECONDS:g} s{scale}",
                f"{orders_import.seconds:.1f} s for {orders_import.rows:,} rows "
                f"({orders_import.rate:,.0f} rows/s); then the quote history, "
                f"{imported[1].rows:,} rows: {imported[1].seconds:.1f} s",
                orders_import.seconds < TARGET_IMPORT_SECONDS * args.orders / 100_000,
            ),
        ]
    )


# --- Main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="orders (N)")
    parser.add_argument("--quotes", type=int, default=3, help="quotes per order (Q)")
    parser.add_argument("--sample", type=int, default=5_000, help="orders in the naive loop (S)")
    parser.add_argument(
        "--repeat", type=int, default=3, help="runs of each export (the median is reported)"
    )
    parser.add_argument(
        "--child", choices=["orders", "orders_walk", "quotes"], help=argparse.SUPPRESS
    )
    parser.add_argument("--child-import", choices=["orders", "quotes"], help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.first, args.output)
        return 0
    if args.child_import:
        import_child(args.child_import, args.output)
        return 0
    if args.orders < 10 or args.quotes < 1 or args.sample < 1 or args.repeat < 1:
        parser.error("need --orders >= 10, --quotes >= 1, --sample >= 1, --repeat >= 1")

    check_postgres()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    heading("Setup")
    print(
        f"  PostgreSQL {server}, Django {django.get_version()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(f"  N={args.orders:,} orders x {args.quotes} quotes, naive sample S={args.sample:,}")
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    scan_slips.check_only_benchmark_data()
    scan_slips.delete_benchmark_data()
    print(f"  migrate + delete earlier benchmark data: {time.perf_counter() - started:.1f} s")

    heading(f"Generating {args.orders:,} orders (bench/scan_slips.py's generator)")
    started = time.perf_counter()
    counts = generate(args.orders, args.quotes)
    print(f"  {counts} in {time.perf_counter() - started:.1f} s")
    started = time.perf_counter()
    alerts = sum(scan_orders(today=TODAY).new_alerts.values())
    analyze()
    print(
        f"  slip scan: {alerts:,} alerts; + VACUUM ANALYZE: {time.perf_counter() - started:.1f} s"
    )

    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        files = Path(tmp)
        heading("Exports, each in a fresh process")
        full = run_child("orders", files / "orders.csv", repeat=args.repeat)
        print_export(full)
        subset = run_child(
            "orders", files / "orders-subset.csv", repeat=args.repeat, first=args.orders // 10
        )
        print_export(subset)
        quotes = run_child("quotes", files / "quotes.csv", repeat=args.repeat)
        print_export(quotes)
        walk = run_child("orders_walk", files / "orders-walk.csv", repeat=args.repeat)
        print_export(walk)
        same_file = (files / "orders-walk.csv").read_bytes() == (files / "orders.csv").read_bytes()
        print(f"  the walk's file is the COPY's, byte for byte: {'yes' if same_file else 'NO'}")

        heading(f"Naive per-row loop over the first {args.sample:,} orders")
        naive, rows = naive_loop(args.sample, files / "naive.csv", capture=True)
        naive_quiet, _ = naive_loop(args.sample, files / "naive.csv", capture=False)
        print(
            f"  {naive.rows:,} rows: {naive.seconds:.2f} s with query logging "
            f"({naive.queries:,} queries), {naive_quiet.seconds:.2f} s without "
            f"({naive_quiet.rate:,.0f} rows/s)"
        )
        with open(files / "orders.csv", encoding="utf-8", newline="") as file:
            exported = list(csv.reader(file))[1 : len(rows) + 1]
        # The naive loop does not neutralise; the bench's names and notes never need it.
        agree = exported == rows
        print(f"  same rows as the export: {'yes' if agree else 'NO'}")
        if not agree:
            diff = next(i for i, (a, b) in enumerate(zip(exported, rows, strict=False)) if a != b)
            print(f"    first difference, row {diff + 1}:\n    {exported[diff]}\n    {rows[diff]}")

        heading("Imports of the exported files into an empty database, each in a fresh process")
        imported = time_import(files / "orders.csv", files / "quotes.csv")

    return print_summary(
        args,
        counts,
        alerts,
        (full, subset, quotes, walk),
        same_file,
        naive,
        naive_quiet,
        agree,
        imported,
    )


if __name__ == "__main__":
    sys.exit(main())
