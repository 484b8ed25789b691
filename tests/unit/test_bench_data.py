"""The benchmarks' data (bench/scan_slips.py generate(), written with COPY for speed) holds
what the app would have written: the stored schedule of every order and line equals the one
definition's, so the benchmarks measure readers of true figures."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest
from django.db import connection

from orders import schedules
from orders.models import DeliveryQuote, OrderLine, PurchaseOrder
from tests.conftest import ON_POSTGRES
from tests.schedules import (
    recomputed_lead_times,
    recomputed_order_tally,
    recomputed_scores,
    stored_lead_times,
    stored_order_tally,
    stored_scores,
)

BENCH = Path(__file__).resolve().parents[2] / "bench"

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(not ON_POSTGRES, reason="the benchmarks write with PostgreSQL's COPY"),
]


def test_generated_orders_carry_their_stored_schedule() -> None:
    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    spec = importlib.util.spec_from_file_location("bench_scan_slips_data", BENCH / "scan_slips.py")
    assert spec is not None
    assert spec.loader is not None
    scan_slips = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = scan_slips  # dataclasses look their module up in sys.modules
    spec.loader.exec_module(scan_slips)

    counts = scan_slips.generate(60, 3)

    assert counts == {"orders": 60, "lines": 60, "quotes": 180}
    assert PurchaseOrder.objects.count() == 60
    assert PurchaseOrder.objects.filter(slip_days__gt=0).exists()
    assert OrderLine.objects.filter(current_delivery_date__isnull=True).count() == 0
    assert schedules.drift() == schedules.Drift()
    assert stored_lead_times() == recomputed_lead_times()
    assert sum(stored_lead_times().values()) == 180 * 2  # once, and once under its GPU model
    assert stored_scores() == recomputed_scores()
    # The scan raises alerts; the scorecards count the orders that have them.
    scan_slips.scan_orders()
    assert stored_scores() == recomputed_scores()
    assert sum(row[6] for row in stored_scores().values()) > 0
    assert stored_order_tally() == recomputed_order_tally()
    assert sum(stored_order_tally().values()) > 0
    with connection.cursor() as cursor:  # TRUNCATE needs the inserts' FK checks done
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
    scan_slips.delete_alerts()
    assert stored_scores() == recomputed_scores()
    assert stored_order_tally() == recomputed_order_tally()
    # The sequences follow the ids COPY wrote: the ORM's next rows do not collide.
    order = PurchaseOrder.objects.first()
    DeliveryQuote.objects.create(
        order=order, quoted_on=order.placed_on, delivery_date=order.placed_on
    )
    # Deleting the benchmark's orders (with SQL) takes them out of the tallies.
    scan_slips.delete_benchmark_data()
    assert stored_lead_times() == recomputed_lead_times()
    assert stored_scores() == recomputed_scores()
    assert schedules.drift() == schedules.Drift()
