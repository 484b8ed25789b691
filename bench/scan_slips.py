"""Benchmark: the set-based slip scan (orders.alerts.scan_orders) against a naive per-order loop.

Run from the project root with DATABASE_URL pointing at a throwaway PostgreSQL database
(bench/run_scan_slips.sh starts one):

    python bench/scan_slips.py [--orders 100000] [--quotes 3] [--sample 5000] [--profile]

It migrates, replaces any earlier benchmark data with N fresh open orders (one line, Q quotes
each, spring-2023 shortage figures, seeded so every run holds the same data), then measures:

- the full scan of every open order with no alerts yet (all findings new), then a rescan the
  same day (nothing new, the steady state); both again without query logging;
- the same scan on the first N/10 orders, and once more with a quarter of the batch size, to
  show the query count follows the number of batches, not of orders;
- a naive loop over the first S orders: a few ORM queries per order and get_or_create per alert
  (with and without query logging).

It prints a Markdown summary with PASS/MISS against the targets and exits 1 if it missed any
(bench/verdicts.py), 0 if not. It refuses (exit 2) anything but PostgreSQL, and a database holding
orders it did not create, because it deletes every slip alert between runs.
"""
# ruff: noqa: E402  (Django must be set up before the project's modules are imported)

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import re
import sys
import time
from collections import Counter, defaultdict, deque
from contextlib import ExitStack
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ["DJANGO_SETTINGS_MODULE"] = "procurement.settings"

import django

django.setup()

import verdicts
from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db import connection, transaction
from django.db.models import Sum
from django.test.utils import CaptureQueriesContext

from orders import order_tally, schedules, vendor_tally
from orders.alerts import alert_notices_create, scan_orders, thresholds
from orders.models import (
    AlertNotice,
    Delivery,
    DeliveryQuote,
    GpuModel,
    OrderLeadTimes,
    OrderLine,
    OrderScore,
    OrderTally,
    OrderTallyPart,
    OutboxEmail,
    PurchaseOrder,
    SlipAlert,
    Vendor,
    VendorScoreTally,
)
from orders.notifications import build_digests
from orders.roles import Role, role_grant
from orders.slips import (
    FIGURES,
    LeadTimeKey,
    OrderFacts,
    Quote,
    evaluate,
    lead_time_counts,
    order_figures,
)
from orders.tally import Key

TODAY = date(2023, 6, 15)  # the day the scans are run "for"
PO_PREFIX = "BENCH-"
BUYER = "bench-buyer"
CHUNK = 20_000  # orders per COPY round
SEED = 20230615

# Target figures (see bench/README.md).
TARGET_SECONDS_PER_100K = 10.0
TARGET_RESCAN_SECONDS_PER_100K = 2.0  # nothing new: the stored schedule is read, not rebuilt
TARGET_SPEEDUP = 20.0

VENDORS = [
    ("Bench Northwind Servers", Vendor.Kind.OEM),
    ("Bench Pacific Silicon Distribution", Vendor.Kind.DISTRIBUTOR),
    ("Bench FlipCard GPU Resale", Vendor.Kind.RESELLER),
    ("Bench Stratus Cloud", Vendor.Kind.CLOUD),
    ("Bench Meridian Systems", Vendor.Kind.OEM),
]
# name, family, memory (GB), spring-2023 unit price (USD)
GPU_MODELS = [
    ("A100 80GB SXM", "Ampere", 80, Decimal("10000.00")),
    ("A800", "Ampere", 80, Decimal("12000.00")),
    ("H100 SXM", "Hopper", 80, Decimal("40000.00")),
    ("A10", "Ampere", 24, Decimal("2800.00")),
]
PLACED_FROM, PLACED_TO = date(2023, 3, 1), date(2023, 5, 31)


# --- Database checks ---------------------------------------------------------------------------


def refuse(message: str) -> None:
    print(f"scan_slips: {message}", file=sys.stderr)
    sys.exit(2)


def check_postgres() -> None:
    db = settings.DATABASES["default"]
    if db["ENGINE"] != "django.db.backends.postgresql":
        refuse(
            f"this benchmark needs PostgreSQL, but the database is {db['ENGINE']} "
            f"({db['NAME']}). Set DATABASE_URL=postgres://... to a throwaway database, or run "
            "`bash bench/run_scan_slips.sh`, which starts one."
        )
    ensure_database_exists(db)


def ensure_database_exists(db: dict[str, Any]) -> None:
    """Create DATABASE_URL's database when the server has not got it (a fresh initdb)."""
    import psycopg
    from psycopg import sql

    params = {
        "host": db.get("HOST") or None,
        "port": db.get("PORT") or None,
        "user": db.get("USER") or None,
        "password": db.get("PASSWORD") or None,
    }
    try:
        with psycopg.connect(dbname="postgres", autocommit=True, **params) as conn:
            found = conn.execute(
                "SELECT 1 FROM pg_database WHERE datname = %s", [db["NAME"]]
            ).fetchone()
            if not found:
                conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(db["NAME"])))
                print(f"Created database {db['NAME']}.")
    except psycopg.Error as exc:
        refuse(f"cannot reach PostgreSQL at {db.get('HOST')}:{db.get('PORT')}: {exc}")


def check_only_benchmark_data() -> None:
    others = PurchaseOrder.objects.exclude(po_number__startswith=PO_PREFIX).count()
    if others:
        refuse(
            f"the database holds {others} orders this benchmark did not create. It deletes "
            "every slip alert and scans every open order, so it only runs on a throwaway "
            "database: `bash bench/run_scan_slips.sh` starts one."
        )


def table(model: Any) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def delete_alerts() -> None:
    """Every slip alert and digest email, and what refers to them (only benchmark orders
    exist, see above)."""
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {table(SlipAlert)}, {table(OutboxEmail)} CASCADE")
        # No alert is open any more: neither do the scorecards nor the order tally count any
        # (its parts keep the orders' own rows, code "").
        parts = table(OrderTallyPart)
        cursor.execute(
            f"UPDATE {parts} SET counts = "
            f"jsonb_path_query_array(counts, 'strict $[*] ? (@[4] == \"\")') "
            f"WHERE jsonb_array_length(counts) > 1"
        )
        cursor.execute(f"DELETE FROM {table(OrderTally)} WHERE code <> ''")
        cursor.execute(f"UPDATE {table(OrderScore)} SET open_alerts = 0 WHERE open_alerts <> 0")
        cursor.execute(f"UPDATE {table(VendorScoreTally)} SET open_alerts = 0")


def delete_benchmark_data() -> None:
    delete_alerts()
    orders = f"SELECT id FROM {table(PurchaseOrder)} WHERE po_number LIKE %s"
    like = [PO_PREFIX + "%"]
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(orders, like)
        deleted = [pk for (pk,) in cursor.fetchall()]
        schedules.forget(deleted)
        cursor.execute(f"DELETE FROM {table(DeliveryQuote)} WHERE order_id IN ({orders})", like)
        cursor.execute(f"DELETE FROM {table(Delivery)} WHERE order_id IN ({orders})", like)
        cursor.execute(f"DELETE FROM {table(OrderLine)} WHERE order_id IN ({orders})", like)
        watchers = table(PurchaseOrder.watchers.through)
        cursor.execute(f"DELETE FROM {watchers} WHERE purchaseorder_id IN ({orders})", like)
        cursor.execute(f"DELETE FROM {table(PurchaseOrder)} WHERE po_number LIKE %s", like)


# --- Data --------------------------------------------------------------------------------------


def days(n: int) -> timedelta:
    return timedelta(days=n)


def quote_plan(rng: random.Random, placed: date, count: int) -> list[tuple[date, date]]:
    """(quoted_on, delivery_date) of an order's quotes, oldest first.

    The first quote promises about a month (28-35 days). Re-quotes come every 2-14 days
    (after the order date, never past the delivery they quote) and mostly move later: a quarter
    of orders hold their date, most slip to 60-120 days, and one in six is told December.
    """
    quoted = placed + days(rng.randint(0, 3))
    delivery = placed + days(rng.randint(28, 35))
    plan = [(quoted, delivery)]
    kind = rng.random()
    target = placed + days(rng.randint(60, 120))
    for k in range(1, count):
        quoted = quoted + days(rng.randint(2, 14))
        if kind < 0.25:  # on track: the vendor confirms, give or take a few days
            new = delivery + days(rng.randint(0, 4))
        elif kind > 5 / 6 and k == count - 1:  # "maybe December"
            new = date(2023, 12, rng.randint(1, 22))
        else:  # slipping towards 60-120 days
            new = plan[0][1] + (target - plan[0][1]) * k // (count - 1)
        delivery = max(new, delivery, quoted)
        plan.append((quoted, delivery))
    return plan


def ensure_reference_data() -> tuple[list[int], list[tuple[int, Decimal]], int]:
    """Vendors, GPU models and the buyer: created once, found again on later runs."""
    Vendor.objects.bulk_create(
        [Vendor(name=name, kind=kind) for name, kind in VENDORS], ignore_conflicts=True
    )
    GpuModel.objects.bulk_create(
        [GpuModel(name=n, family=f, memory_gb=m) for n, f, m, _ in GPU_MODELS],
        ignore_conflicts=True,
    )
    vendor_ids = list(
        Vendor.objects.filter(name__in=[n for n, _ in VENDORS])
        .order_by("name")
        .values_list("pk", flat=True)
    )
    by_name = {g.name.lower(): g.pk for g in GpuModel.objects.all()}
    models = [(by_name[name.lower()], price) for name, _, _, price in GPU_MODELS]
    buyer, _ = get_user_model().objects.update_or_create(
        username=BUYER,
        defaults={"email": "bench-buyer@example.com", "is_active": True},
    )
    # A Buyer, as in production: a buyer without a role may not see the orders, so the scan
    # would write no notices for them and measure less than it does for real.
    role_grant(user=buyer, role=Role.BUYER)
    return vendor_ids, models, buyer.pk


def _copy(model: Any, rows: list[Any]) -> None:
    """COPY these unsaved instances (primary keys set) into the model's table, each column
    prepared by its field as bulk_create would (defaults, auto_now_add, JSON)."""
    fields = [f for f in model._meta.local_concrete_fields]
    columns = ", ".join(connection.ops.quote_name(f.column) for f in fields)
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY {table(model)} ({columns}) FROM STDIN") as copy,
    ):
        for obj in rows:
            copy.write_row([f.get_db_prep_save(f.pre_save(obj, True), connection) for f in fields])


def _next_ids(*models: Any) -> list[int]:
    with connection.cursor() as cursor:
        found = []
        for model in models:
            cursor.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table(model)}")
            found.append(cursor.fetchone()[0])
        return found


def _reset_sequences(*models: Any) -> None:
    with connection.cursor() as cursor:
        for model in models:
            cursor.execute(
                f"SELECT setval(pg_get_serial_sequence(%s, 'id'), "
                f"(SELECT COALESCE(MAX(id), 0) + 1 FROM {table(model)}), false)",
                [model._meta.db_table],
            )


def _store_schedule(target: Any, figures: Any) -> None:
    for name in FIGURES:
        setattr(target, name, getattr(figures, name))


def generate(n_orders: int, n_quotes: int) -> dict[str, int]:
    """N open orders, one line and Q quotes each, written with COPY, their stored schedule,
    lead-time counts, scorecard figures and order tally parts computed by the one definitions
    (orders.slips.order_figures, lead_time_counts, orders.vendor_tally.order_score,
    orders.order_tally.order_part) as orders.schedules would."""
    rng = random.Random(SEED)
    vendor_ids, models, buyer_id = ensure_reference_data()
    span = (PLACED_TO - PLACED_FROM).days
    counts: Counter[str] = Counter()
    tally: Counter[LeadTimeKey] = Counter()
    order_counts: Counter[Key] = Counter()
    order_id, line_id, quote_id = _next_ids(PurchaseOrder, OrderLine, DeliveryQuote)
    for start in range(0, n_orders, CHUNK):
        size = min(CHUNK, n_orders - start)
        orders, lines, quotes, lead_times, scores, score_rows, parts = [], [], [], [], [], [], []
        for i in range(start, start + size):
            placed = PLACED_FROM + days(rng.randint(0, span))
            need_by = placed + days(rng.randint(45, 150)) if rng.random() < 0.4 else None
            order = PurchaseOrder(
                pk=order_id,
                po_number=f"{PO_PREFIX}{i + 1:07d}",
                vendor_id=rng.choice(vendor_ids),
                buyer_id=buyer_id,
                status=PurchaseOrder.Status.CONFIRMED,
                placed_on=placed,
                need_by=need_by,
                currency="USD",
            )
            plan = quote_plan(rng, placed, n_quotes)
            gpu_model_id, price = rng.choice(models)
            line = OrderLine(
                pk=line_id,
                order_id=order_id,
                gpu_model_id=gpu_model_id,
                quantity=8 * rng.randint(1, 48),
                unit_price=price,
            )
            history = []
            for quoted_on, delivery in plan:
                quotes.append(
                    DeliveryQuote(
                        pk=quote_id,
                        order_id=order_id,
                        quoted_on=quoted_on,
                        delivery_date=delivery,
                        source="bench",
                    )
                )
                history.append(Quote(quote_id, quoted_on, delivery))
                quote_id += 1
            stored = order_figures(placed, history, [line_id])
            quoted = lead_time_counts(placed, order.vendor_id, history, {line_id: gpu_model_id})
            tally.update(quoted)
            lead_times.append(
                OrderLeadTimes(order_id=order_id, counts=schedules.LEAD_TIMES.rows(quoted))
            )
            score = vendor_tally.order_score(
                vendor_id=order.vendor_id,
                status=order.status,
                baseline=stored.order.baseline_delivery_date,
                current=stored.order.current_delivery_date,
                slip_days=stored.order.slip_days,
                requotes=stored.order.requote_count,
                units=line.quantity,
                received_on=None,
                open_alert=False,  # the scan raises them, and updates the tally
            )
            scores.append(score)
            score_rows.append(vendor_tally.score_row(order_id, score))
            part = order_tally.order_part(
                vendor_id=order.vendor_id,
                buyer_id=buyer_id,
                status=order.status,
                slip_days=stored.order.slip_days,
                alerts=(),  # the scan raises them, and updates the tally
            )
            order_counts.update(part)
            parts.append(OrderTallyPart(order_id=order_id, counts=order_tally.ORDERS.rows(part)))
            _store_schedule(order, stored.order)
            order.current_quote_id = stored.current_quote_id
            _store_schedule(line, stored.lines[line_id])
            orders.append(order)
            lines.append(line)
            order_id += 1
            line_id += 1
        with transaction.atomic():
            _copy(PurchaseOrder, orders)
            _copy(OrderLine, lines)
            _copy(DeliveryQuote, quotes)
            _copy(OrderLeadTimes, lead_times)
            _copy(OrderScore, score_rows)
            _copy(OrderTallyPart, parts)
            vendor_tally.add_to_tally(vendor_tally.score_difference((s, None) for s in scores))
        counts["orders"] += len(orders)
        counts["lines"] += len(lines)
        counts["quotes"] += len(quotes)
        if (start // CHUNK) % 5 == 4 or start + size == n_orders:
            print(f"  {counts['orders']:>9,} orders", flush=True)
    with transaction.atomic():
        schedules.LEAD_TIMES.add(tally)
        order_tally.ORDERS.add(order_counts)
    _reset_sequences(PurchaseOrder, OrderLine, DeliveryQuote)
    return dict(counts)


def analyze() -> None:
    """Fresh planner statistics, as a live database would have after autovacuum."""
    with connection.cursor() as cursor:
        for model in (PurchaseOrder, OrderLine, DeliveryQuote, SlipAlert, AlertNotice):
            cursor.execute(f"VACUUM ANALYZE {table(model)}")
        cursor.execute(f"ANALYZE {table(Delivery)}")


# --- Measurements ------------------------------------------------------------------------------


@dataclass
class Run:
    label: str
    orders: int
    seconds: float
    queries: int | None  # None: measured without query logging
    batches: int = 0
    findings: int = 0
    new_alerts: int = 0
    notices: int = 0
    sql_seconds: float = 0.0
    by_statement: dict[str, tuple[int, float]] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.orders / self.seconds if self.seconds else float("inf")

    @property
    def per_batch(self) -> float:
        if self.queries is None or not self.batches:
            return float("nan")
        return self.queries / self.batches

    @property
    def queries_shown(self) -> str:
        return "not logged" if self.queries is None else f"{self.queries:,}"

    @property
    def queries_per(self) -> str:
        if self.queries is None:
            return "-"
        if self.batches:
            return f"{self.per_batch:.2f}/batch"
        return f"{self.queries / max(self.orders, 1):.2f}/order"


_STATEMENT = re.compile(r'^\s*(\w+)\b.*?\b(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', re.S | re.I)


def statement_kind(sql: str) -> str:
    match = _STATEMENT.match(sql)
    if not match:
        return sql.split(None, 1)[0].upper() if sql.strip() else "?"
    return f"{match[1].upper()} {match[2]}"


class Measure:
    """Wall time, and every query: counted by CaptureQueriesContext (which forces query logging
    whatever settings.DEBUG says, and includes BEGIN/COMMIT), timed by an execute wrapper,
    because Django logs each query's time rounded to the millisecond.

    With capture=False, wall time only: logging a query costs time too (Django renders each
    one with its parameters, thousands of ids for the scan's IN lists), which production, with
    DEBUG off, does not pay."""

    def __init__(self, *, capture: bool = True) -> None:
        self.capture = capture
        self.seconds = 0.0
        self.timed: list[tuple[str, float]] = []

    def _time(self, execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        started = time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            self.timed.append((sql, time.perf_counter() - started))

    def __enter__(self) -> Measure:
        self._stack = ExitStack()
        if self.capture:
            # Django keeps only the last 9,000 logged queries; make room for all of them.
            connection.queries_log = deque(maxlen=10_000_000)
            self.captured = self._stack.enter_context(CaptureQueriesContext(connection))
            self._stack.enter_context(connection.execute_wrapper(self._time))
        self._started = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.seconds = time.perf_counter() - self._started
        self._stack.close()

    @property
    def queries(self) -> int | None:
        return len(self.captured.captured_queries) if self.capture else None

    def by_statement(self) -> dict[str, tuple[int, float]]:
        if not self.capture:
            return {}
        found: dict[str, list[float]] = defaultdict(list)
        for sql, seconds in self.timed:
            found[statement_kind(sql)].append(seconds)
        # Transaction control never goes through execute wrappers: Django's log has it.
        for query in self.captured.captured_queries:
            if query["sql"].split(None, 1)[0].upper() in {"BEGIN", "COMMIT", "ROLLBACK"}:
                found[query["sql"].upper()].append(float(query["time"]))
        return {kind: (len(times), sum(times)) for kind, times in found.items()}


def timed_scan(
    label: str, *, order_ids: list[int] | None = None, batch_size: int, capture: bool = True
) -> Run:
    """Logged runs use one connection (query logging sees only this thread's); unlogged runs
    use SLIP_SCAN_WORKERS connections, as production does."""
    workers = 1 if capture else settings.SLIP_SCAN_WORKERS
    with Measure(capture=capture) as measured:
        result = scan_orders(
            order_ids=order_ids, today=TODAY, batch_size=batch_size, workers=workers
        )
    by_statement = measured.by_statement()
    return Run(
        label=label,
        orders=result.orders,
        seconds=measured.seconds,
        queries=measured.queries,
        batches=math.ceil(result.orders / batch_size),
        findings=sum(result.findings.values()),
        new_alerts=sum(result.new_alerts.values()),
        notices=result.notices,
        sql_seconds=sum(t for _, t in by_statement.values()),
        by_statement=by_statement,
    )


def naive_loop(sample: int, *, capture: bool = True) -> Run:
    """What a straightforward implementation does: a few queries per order, one per line for
    receipts, and get_or_create for each finding."""
    limits = thresholds()
    n = findings = created = 0
    with Measure(capture=capture) as measured:
        for order in PurchaseOrder.objects.open().order_by("pk")[:sample]:
            n += 1
            lines = list(order.lines.all())
            quotes = list(order.quotes.order_by("quoted_on", "id"))
            received = {
                line.pk: line.deliveries.aggregate(total=Sum("quantity"))["total"] or 0
                for line in lines
            }
            facts = OrderFacts(
                placed_on=order.placed_on,
                status=order.status,
                quotes=[Quote(q.pk, q.quoted_on, q.delivery_date, q.line_id) for q in quotes],
                line_ids=[line.pk for line in lines],
                need_by=order.need_by,
                fully_received=bool(lines)
                and all(received[line.pk] >= line.quantity for line in lines),
            )
            for finding in evaluate(facts, TODAY, limits):
                findings += 1
                _, was_created = SlipAlert.objects.get_or_create(
                    order=order,
                    code=finding.code,
                    quote_id=finding.quote_id,
                    defaults={"severity": finding.severity, "message": finding.message},
                )
                created += was_created
    by_statement = measured.by_statement()
    return Run(
        label=f"naive loop ({n:,} orders){'' if capture else ', no query logging'}",
        orders=n,
        seconds=measured.seconds,
        queries=measured.queries,
        findings=findings,
        new_alerts=created,
        sql_seconds=sum(t for _, t in by_statement.values()),
        by_statement=by_statement,
    )


def alert_keys(order_ids: list[int]) -> set[tuple[int, str, int]]:
    return set(
        SlipAlert.objects.filter(order_id__in=order_ids).values_list("order_id", "code", "quote_id")
    )


# --- Output ------------------------------------------------------------------------------------


def heading(text: str) -> None:
    print(f"\n== {text}", flush=True)


def print_run(run: Run) -> None:
    print(f"  orders            {run.orders:>12,}")
    print(f"  wall time         {run.seconds:>12.2f} s")
    print(f"  throughput        {run.rate:>12,.0f} orders/s")
    print(f"  queries           {run.queries_shown:>12}  (with BEGIN/COMMIT)")
    if run.batches:
        print(f"  batches           {run.batches:>12,}")
    print(f"  queries per       {run.queries_per:>12}")
    print(f"  findings          {run.findings:>12,}")
    print(f"  new alerts        {run.new_alerts:>12,}")
    if run.batches:
        print(f"  notices           {run.notices:>12,}")
    if run.queries is None:
        return
    share = run.sql_seconds / run.seconds if run.seconds else 0
    print(
        f"  time in SQL       {run.sql_seconds:>12.2f} s  ({share:.0%} of wall time; the rest "
        "is Python)"
    )
    print("  statements: count, seconds (cursor.execute incl. psycopg; COMMIT to the ms)")
    for kind, (count, seconds) in sorted(run.by_statement.items(), key=lambda kv: -kv[1][1]):
        print(f"    {kind:<36} {count:>8,} {seconds:>9.3f} s")


@dataclass
class Results:
    counts: dict[str, int]
    generated: float
    full: Run
    rescan: Run
    full_quiet: Run
    rescan_quiet: Run
    subset: Run
    quarter: Run
    naive: Run
    naive_quiet: Run
    agree: str
    follow_up: str


def print_summary(args: argparse.Namespace, r: Results) -> int:
    """Print the runs and the targets; return the exit status (1 if a target was missed)."""
    heading("Summary (Markdown)")
    print(
        f"\n{r.counts['orders']:,} open orders x {args.quotes} quotes, "
        f"SLIP_SCAN_BATCH_SIZE={settings.SLIP_SCAN_BATCH_SIZE:,}, today={TODAY.isoformat()}; "
        f"generated in {r.generated:.1f} s. Queries counted with CaptureQueriesContext "
        "(BEGIN/COMMIT included); rows marked 'no query logging' are the same run again "
        "without it, as production runs.\n"
    )
    print("| run | orders | seconds | orders/s | queries | queries per | new alerts |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for run in (
        r.full,
        r.full_quiet,
        r.rescan,
        r.rescan_quiet,
        r.subset,
        r.quarter,
        r.naive,
        r.naive_quiet,
    ):
        print(
            f"| {run.label} | {run.orders:,} | {run.seconds:.2f} | {run.rate:,.0f} | "
            f"{run.queries_shown} | {run.queries_per} | {run.new_alerts:,} |"
        )
    print()
    status = check_targets(args, r)
    print(
        f"\nThe steady-state rescan (nothing new) took {r.rescan.seconds:.2f} s "
        f"({r.rescan_quiet.seconds:.2f} s without query logging). Naive loop and full scan "
        f"raised the same alerts on the naive sample: {r.agree}. After the first scan (as "
        f"the daily task runs them, not part of the scan's time): {r.follow_up}."
    )
    return status


def check_targets(args: argparse.Namespace, r: Results) -> int:
    """The targets' table (bench/verdicts.py); 1 if any was missed, else 0."""
    target_seconds = TARGET_SECONDS_PER_100K * args.orders / 100_000
    rescan_seconds = TARGET_RESCAN_SECONDS_PER_100K * args.orders / 100_000
    scaling = [r.full, r.subset, r.quarter]
    per_batch = [run.per_batch for run in scaling]
    spread = max(per_batch) - min(per_batch)
    speedup = r.full.rate / r.naive.rate
    speedup_quiet = r.full_quiet.rate / r.naive_quiet.rate
    scale = "" if args.orders == 100_000 else f", scaled to {args.orders:,} orders"
    return verdicts.report(
        [
            verdicts.Target(
                f"full scan of 100,000 orders under {TARGET_SECONDS_PER_100K:g} s{scale}, as "
                f"production runs it ({settings.SLIP_SCAN_WORKERS} connections, no query "
                "logging)",
                f"{r.full_quiet.seconds:.2f} s for {r.full_quiet.orders:,} (1 connection with "
                f"query logging: {r.full.seconds:.2f} s; limit {target_seconds:.2f} s)",
                r.full_quiet.seconds < target_seconds,
            ),
            verdicts.Target(
                f"rescan of 100,000 unchanged orders under {TARGET_RESCAN_SECONDS_PER_100K:g} s"
                f"{scale}, as production runs it",
                f"{r.rescan_quiet.seconds:.2f} s for {r.rescan_quiet.orders:,} (limit "
                f"{rescan_seconds:.2f} s)",
                r.rescan_quiet.seconds < rescan_seconds,
            ),
            verdicts.Target(
                "query count independent of order count (queries/batch within 1 across "
                f"{len(scaling)} runs)",
                " / ".join(f"{q:.2f}" for q in per_batch),
                # A run without query counts (NaN) is a missing figure, not a pass: max() and
                # min() skip a NaN or not depending on where it stands.
                all(map(math.isfinite, per_batch)) and spread <= 1.0,
            ),
            verdicts.Target(
                f"at least {TARGET_SPEEDUP:g}x the naive loop's throughput (the lower of: both "
                "with query logging on 1 connection; both as production runs)",
                f"{speedup:,.1f}x ({r.full.rate:,.0f} vs {r.naive.rate:,.0f} orders/s); "
                f"{speedup_quiet:,.1f}x ({r.full_quiet.rate:,.0f} vs "
                f"{r.naive_quiet.rate:,.0f})",
                min(speedup, speedup_quiet) >= TARGET_SPEEDUP,
            ),
        ]
    )


# --- Main --------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--orders", type=int, default=100_000, help="open orders (N)")
    parser.add_argument("--quotes", type=int, default=3, help="quotes per order (Q)")
    parser.add_argument("--sample", type=int, default=5_000, help="orders in the naive loop (S)")
    parser.add_argument(
        "--profile", action="store_true", help="also print a cProfile of one more full scan"
    )
    args = parser.parse_args()
    if args.orders < 10 or args.quotes < 1 or args.sample < 1:
        parser.error("need --orders >= 10, --quotes >= 1, --sample >= 1")

    check_postgres()
    batch_size = settings.SLIP_SCAN_BATCH_SIZE
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        server = cursor.fetchone()[0]
    heading("Setup")
    print(
        f"  PostgreSQL {server}, Django {django.get_version()}, Python "
        f"{platform.python_version()}, {os.cpu_count()} CPUs"
    )
    print(
        f"  N={args.orders:,} orders x {args.quotes} quotes, naive sample S={args.sample:,}, "
        f"SLIP_SCAN_BATCH_SIZE={batch_size:,}, today={TODAY.isoformat()}"
    )
    started = time.perf_counter()
    call_command("migrate", verbosity=0)
    check_only_benchmark_data()
    delete_benchmark_data()
    print(f"  migrate + delete earlier benchmark data: {time.perf_counter() - started:.1f} s")

    heading(f"Generating {args.orders:,} orders (COPY, {CHUNK:,} per round)")
    started = time.perf_counter()
    counts = generate(args.orders, args.quotes)
    generated = time.perf_counter() - started
    print(
        f"  {counts['orders']:,} orders, {counts['lines']:,} lines, {counts['quotes']:,} quotes "
        f"in {generated:.1f} s ({counts['orders'] / generated:,.0f} orders/s)"
    )
    started = time.perf_counter()
    analyze()
    print(f"  VACUUM ANALYZE: {time.perf_counter() - started:.1f} s")

    everything = f"{args.orders:,} orders"
    heading(f"Full scan, no alerts yet: scan_orders(today={TODAY.isoformat()})")
    full = timed_scan(
        f"full scan, no alerts yet, 1 connection ({everything})", batch_size=batch_size
    )
    print_run(full)
    sample_ids = list(
        PurchaseOrder.objects.open().order_by("pk").values_list("pk", flat=True)[: args.sample]
    )
    scan_keys = alert_keys(sample_ids)

    heading("Full scan again, same day: nothing new (the steady state)")
    rescan = timed_scan(f"rescan, nothing new, 1 connection ({everything})", batch_size=batch_size)
    print_run(rescan)

    delete_alerts()
    workers = settings.SLIP_SCAN_WORKERS
    heading(f"Both again as production runs them: no query logging, SLIP_SCAN_WORKERS={workers}")
    full_quiet = timed_scan(
        f"full scan, no alerts yet, {workers} connections, no query logging ({everything})",
        batch_size=batch_size,
        capture=False,
    )
    rescan_quiet = timed_scan(
        f"rescan, nothing new, {workers} connections, no query logging ({everything})",
        batch_size=batch_size,
        capture=False,
    )
    for run in (full_quiet, rescan_quiet):
        print(f"  {run.label}: {run.seconds:.2f} s, {run.rate:,.0f} orders/s")

    heading("What follows a first scan in the daily task: round-0 notices, then the digests")
    started = time.perf_counter()
    told = alert_notices_create()
    told_seconds = time.perf_counter() - started
    started = time.perf_counter()
    emails = len(build_digests())
    digest_seconds = time.perf_counter() - started
    follow_up = (
        f"alert_notices_create(): {told:,} notices in {told_seconds:.2f} s; build_digests(): "
        f"{emails:,} email(s) in {digest_seconds:.2f} s (at most "
        f"DIGEST_MAX_ORDERS={settings.DIGEST_MAX_ORDERS} orders listed per section)"
    )
    print(f"  {follow_up}")

    subset_ids = list(
        PurchaseOrder.objects.open()
        .order_by("pk")
        .values_list("pk", flat=True)[: max(args.orders // 10, 1)]
    )
    delete_alerts()
    heading(f"Subset scan, no alerts yet: the first {len(subset_ids):,} orders (order_ids=...)")
    subset = timed_scan(
        f"subset scan ({len(subset_ids):,} orders)", order_ids=subset_ids, batch_size=batch_size
    )
    print_run(subset)

    small_batch = max(batch_size // 4, 1)
    delete_alerts()
    heading(f"Subset scan again, no alerts yet, batch_size={small_batch:,} (a quarter)")
    quarter = timed_scan(
        f"subset scan, batch_size={small_batch:,} ({len(subset_ids):,} orders)",
        order_ids=subset_ids,
        batch_size=small_batch,
    )
    print_run(quarter)

    delete_alerts()
    heading(f"Naive per-order loop over the first {args.sample:,} orders, no alerts yet")
    naive = naive_loop(args.sample)
    print_run(naive)
    naive_keys = alert_keys(sample_ids)
    agree = "yes" if naive_keys == scan_keys else "NO"
    print(
        f"  same alerts as the full scan for these orders: {agree} "
        f"({len(naive_keys):,} naive, {len(scan_keys):,} scan)"
    )
    if naive_keys != scan_keys:
        print(f"    only naive: {sorted(naive_keys - scan_keys)[:5]}")
        print(f"    only scan:  {sorted(scan_keys - naive_keys)[:5]}")
    delete_alerts()
    naive_quiet = naive_loop(args.sample, capture=False)
    print(
        f"  again without query logging: {naive_quiet.seconds:.2f} s, "
        f"{naive_quiet.rate:,.0f} orders/s"
    )

    if args.profile:
        import cProfile
        import pstats

        delete_alerts()
        heading("cProfile of one more full scan, no alerts yet (no query logging)")
        profiler = cProfile.Profile()
        started = time.perf_counter()
        profiler.runcall(scan_orders, today=TODAY, batch_size=batch_size, workers=1)
        print(f"  wall time under the profiler: {time.perf_counter() - started:.2f} s")
        stats = pstats.Stats(profiler, stream=sys.stdout).strip_dirs()
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(30)

    return print_summary(
        args,
        Results(
            counts=counts,
            generated=generated,
            full=full,
            rescan=rescan,
            full_quiet=full_quiet,
            rescan_quiet=rescan_quiet,
            subset=subset,
            quarter=quarter,
            naive=naive,
            naive_quiet=naive_quiet,
            agree=agree,
            follow_up=follow_up,
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
