"""Migration 0014 fills the stored schedule of the orders and lines recorded before it from
their history, with the one definition (orders.slips.order_figures), chunk by chunk; 0018
fills the lead-time tally the same way (orders.slips.lead_time_counts), and 0020 the order
tally (orders.order_tally.order_part)."""

from __future__ import annotations

import importlib
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.conf import settings
from django.db import connection
from django.db.migrations.executor import MigrationExecutor

from orders import schedules
from orders.models import OrderLine, PurchaseOrder
from orders.slips import EVERY_QUOTE, FIGURES, Figures
from tests.schedules import (
    recomputed,
    recomputed_lead_times,
    recomputed_order_tally,
    stored_lead_times,
    stored_order_tally,
)

migration = importlib.import_module("orders.migrations.0014_stored_schedule")
tally_migration = importlib.import_module("orders.migrations.0018_lead_time_tally")
alert_migration = importlib.import_module("orders.migrations.0020_order_tally")
BEFORE = [("orders", migration.Migration.dependencies[0][1])]
AFTER = [("orders", migration.__name__.rsplit(".", 1)[-1])]
PLACED = date(2023, 4, 14)


def _history(apps: Any) -> None:
    """Orders of every shape, written with the models as they were before 0014: whole-order
    quotes and re-quotes, a line's own re-quote, an order without lines, lines without an
    applicable quote, an order never quoted, two quotes on one day."""
    user = apps.get_model(settings.AUTH_USER_MODEL).objects.create(
        username="alice", email="alice@gpu-buyers.example"
    )
    vendor = apps.get_model("orders", "Vendor").objects.create(name="Northwind", kind="oem")
    gpu_model = apps.get_model("orders", "GpuModel")
    a100 = gpu_model.objects.create(name="A100 80GB SXM", memory_gb=80)
    h100 = gpu_model.objects.create(name="H100 SXM", memory_gb=80)
    order_model = apps.get_model("orders", "PurchaseOrder")
    line_model = apps.get_model("orders", "OrderLine")
    quote_model = apps.get_model("orders", "DeliveryQuote")

    def order(number: str, *gpus: Any) -> tuple[Any, list[Any]]:
        row = order_model.objects.create(
            po_number=number, vendor=vendor, buyer=user, placed_on=PLACED, status="confirmed"
        )
        lines = [
            line_model.objects.create(
                order=row, gpu_model=gpu, quantity=8, unit_price=Decimal("10000")
            )
            for gpu in gpus
        ]
        return row, lines

    def quote(row: Any, quoted: int, wait: int, line: Any = None) -> None:
        quoted_on = PLACED + timedelta(days=quoted)
        quote_model.objects.create(
            order=row, line=line, quoted_on=quoted_on, delivery_date=quoted_on + timedelta(wait)
        )

    requoted, (_, h100_line) = order("PO-MIG-REQUOTED", a100, h100)
    quote(requoted, 0, 31)
    quote(requoted, 20, 90)
    quote(requoted, 25, 40, h100_line)
    no_lines, _ = order("PO-MIG-NO-LINES")
    quote(no_lines, 0, 10)
    quote(no_lines, 5, 60)
    order("PO-MIG-UNQUOTED", a100)
    line_only, (a100_line, _) = order("PO-MIG-LINE-ONLY", a100, h100)
    quote(line_only, 3, 30, a100_line)
    same_day, _ = order("PO-MIG-SAME-DAY", h100)
    quote(same_day, 1, 50)
    quote(same_day, 1, 20)


def _expected_and_stored() -> tuple[dict[str, Any], dict[str, Any]]:
    """Per PO number: (order figures, current quote id, figures per line), from the history
    through order_figures, and as the columns store them."""
    expected, stored = {}, {}
    for order in PurchaseOrder.objects.all():
        plan = recomputed(order)
        lines = {line.pk: line for line in OrderLine.objects.filter(order=order)}
        expected[order.po_number] = (plan.order, plan.current_quote_id, plan.lines)
        stored[order.po_number] = (
            Figures(**{name: getattr(order, name) for name in FIGURES}),
            order.current_quote_id,
            {pk: Figures(**{n: getattr(line, n) for n in FIGURES}) for pk, line in lines.items()},
        )
    return expected, stored


@pytest.mark.django_db(transaction=True)
def test_the_migration_fills_every_order_and_line_from_its_history(monkeypatch: Any) -> None:
    """Guards 0014's RunPython fill (and its chunking: two orders a chunk here)."""
    monkeypatch.setattr(migration, "CHUNK", 2)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        _history(executor.loader.project_state(BEFORE).apps)
        executor = MigrationExecutor(connection)
        executor.migrate(AFTER)

        expected, stored = _expected_and_stored()
        assert stored == expected
        assert len(stored) == 5
        # Not the defaults by luck: the re-quoted order is 31 days baseline, 110 current.
        figures, _, _ = stored["PO-MIG-REQUOTED"]
        assert (figures.baseline_lead_days, figures.current_lead_days) == (31, 110)
        assert (figures.slip_days, figures.requote_count) == (79, 2)
    finally:  # the later migrations, for the tests that follow
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_lead_time_tally_migration_counts_every_quote(monkeypatch: Any) -> None:
    """Guards 0018's RunPython fill (two orders a chunk here): every order's counts and the
    tally are those of its history, so check_schedules finds nothing."""
    monkeypatch.setattr(tally_migration, "CHUNK", 2)
    executor = MigrationExecutor(connection)
    executor.migrate(BEFORE)
    try:
        _history(executor.loader.project_state(BEFORE).apps)
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

        tally = stored_lead_times()
        assert tally == recomputed_lead_times()
        # 8 quotes once each; under a GPU model a whole-order quote counts once per line, a
        # line's quote once, an order without lines not at all: 5 + 0 + 1 + 2.
        assert sum(n for (_, _, gpu, _), n in tally.items() if gpu == EVERY_QUOTE) == 8
        assert sum(n for (_, _, gpu, _), n in tally.items() if gpu != EVERY_QUOTE) == 8
        assert schedules.drift() == schedules.Drift()
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


@pytest.mark.django_db(transaction=True)
def test_the_order_tally_migration_counts_every_order_and_its_open_alerts(
    monkeypatch: Any,
) -> None:
    """Guards 0020's RunPython fill (one order a chunk here): every order counts once, its
    open alerts once each, under its vendor, buyer, status and slip; acknowledged and closed
    alerts do not; check_schedules then finds nothing."""
    monkeypatch.setattr(alert_migration, "CHUNK", 1)
    before = [("orders", alert_migration.Migration.dependencies[0][1])]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    try:
        apps = executor.loader.project_state(before).apps
        _history(apps)
        order_model = apps.get_model("orders", "PurchaseOrder")
        alert = apps.get_model("orders", "SlipAlert").objects.create
        quotes = apps.get_model("orders", "DeliveryQuote").objects
        requoted = order_model.objects.get(po_number="PO-MIG-REQUOTED")
        no_lines = order_model.objects.get(po_number="PO-MIG-NO-LINES")
        same_day = order_model.objects.get(po_number="PO-MIG-SAME-DAY")
        same_day.status = "cancelled"
        same_day.save()
        for order, code, severity, extra in (
            (requoted, "lead_time_multiplied", "warning", {}),
            (requoted, "past_need_by", "critical", {}),
            (requoted, "december_delivery", "warning", {"acknowledged_at": "2023-05-01T00:00Z"}),
            (no_lines, "lead_time_multiplied", "warning", {}),
            (
                no_lines,
                "december_delivery",
                "warning",
                {"status": "superseded", "closed_at": "2023-05-01T00:00Z"},
            ),
            (same_day, "lead_time_multiplied", "warning", {}),
        ):
            quote = quotes.filter(order=order).order_by("pk").first()
            alert(order=order, quote=quote, code=code, severity=severity, message="m", **extra)
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())

        tally = stored_order_tally()
        assert tally == recomputed_order_tally()
        vendor, buyer = requoted.vendor_id, requoted.buyer_id
        # Rows written with the historical models carry no stored schedule: slip 0.
        confirmed, cancelled = (
            (vendor, buyer, "confirmed", False),
            (vendor, buyer, "cancelled", False),
        )
        assert tally == {
            (*confirmed, "", ""): 4,
            (*cancelled, "", ""): 1,
            (*confirmed, "lead_time_multiplied", "warning"): 2,
            (*confirmed, "past_need_by", "critical"): 1,
            (*cancelled, "lead_time_multiplied", "warning"): 1,
        }
        # (Rows written with the historical models carry no schedule: only this tally is
        # checked here.)
        found = schedules.drift()
        assert (found.tally_orders, found.tally_keys) == (0, 0)
    finally:
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())
