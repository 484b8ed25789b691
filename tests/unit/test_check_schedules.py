"""`manage.py check_schedules`: a stored schedule changed behind the signals' back (here by
QuerySet.update, as raw SQL or a bad migration would) is reported, named and fails the run;
--fix rewrites it from the history; --sample N looks at no more than N orders."""

from __future__ import annotations

from datetime import date, timedelta
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.db.models import F

from orders import schedules, services
from orders.models import LeadTimeTally, OrderLine, PurchaseOrder
from orders.slips import FIGURES, Figures
from tests.factories import (
    GpuModelFactory,
    OrderLineFactory,
    PurchaseOrderFactory,
    VendorFactory,
)
from tests.schedules import recomputed, recomputed_lead_times, stored_lead_times

pytestmark = pytest.mark.django_db

PLACED = date(2023, 4, 14)


def _orders(n: int) -> list[PurchaseOrder]:
    """n quoted orders, each with two lines (one with a quote of its own); and one order
    never quoted."""
    a100, h100 = GpuModelFactory(name="A100 80GB SXM"), GpuModelFactory(name="H100 SXM")
    orders = []
    for i in range(n):
        order = PurchaseOrderFactory(po_number=f"PO-CHK-{i}", placed_on=PLACED)
        OrderLineFactory(order=order, gpu_model=a100)
        line = OrderLineFactory(order=order, gpu_model=h100)
        for quoted, wait, on_line in ((0, 30, False), (10, 60 + i, False), (12, 45, True)):
            quoted_on = PLACED + timedelta(days=quoted)
            services.quote_add(
                order=order,
                line=line if on_line else None,
                quoted_on=quoted_on,
                delivery_date=quoted_on + timedelta(days=wait),
                check=False,
            )
        orders.append(order)
    orders.append(PurchaseOrderFactory(po_number="PO-CHK-UNQUOTED", placed_on=PLACED))
    return orders


def _run(*args: str) -> str:
    out = StringIO()
    call_command("check_schedules", *args, stdout=out)
    return out.getvalue()


def _assert_stored_equals_history() -> None:
    """Every order's and line's columns against order_figures of its history, read here."""
    for order in PurchaseOrder.objects.all():
        expected = recomputed(order)
        lines = {line.pk: line for line in OrderLine.objects.filter(order=order)}
        stored = Figures(**{name: getattr(order, name) for name in FIGURES})
        assert (stored, order.current_quote_id) == (expected.order, expected.current_quote_id)
        for pk, line in lines.items():
            assert Figures(**{name: getattr(line, name) for name in FIGURES}) == expected.lines[pk]


def test_a_database_written_through_the_app_passes() -> None:
    """Guards the baseline of the tests below: the app's own writes leave nothing to find."""
    _orders(3)
    assert "every stored schedule matches its history" in _run()
    assert "every stored schedule matches its history" in _run("--fix")


def test_columns_changed_behind_the_signals_are_named_and_fail_the_run() -> None:
    """Guards the report: counts of orders and lines that differ, PO numbers among them, and
    exit status 1 (CommandError) when --fix was not given; nothing is rewritten."""
    first, second, third, *_ = _orders(4)
    PurchaseOrder.objects.filter(pk=first.pk).update(slip_days=999)
    PurchaseOrder.objects.filter(pk=second.pk).update(current_quote=None, requote_count=7)
    OrderLine.objects.filter(order=third).update(baseline_lead_days=-1)

    with pytest.raises(CommandError) as failed:
        _run()

    message = str(failed.value)
    assert failed.value.returncode == 1
    assert "Checked every order: 2 orders and 2 lines stored a schedule" in message
    assert "(e.g. PO-CHK-0, PO-CHK-1)" in message
    assert "--fix" in message
    assert PurchaseOrder.objects.get(pk=first.pk).slip_days == 999  # reported, not rewritten
    # Their scorecard figures are worked out from those columns: stale too.
    assert schedules.drift() == schedules.Drift(2, 2, (first.pk, second.pk), score_orders=2)


def test_fix_rewrites_what_differs_and_a_second_run_is_clean() -> None:
    """Guards --fix: every column changed behind the signals (on orders and on lines) is
    rewritten from the history, the run succeeds, and the next run finds nothing."""
    orders = _orders(3)
    PurchaseOrder.objects.update(
        baseline_delivery_date=date(2030, 1, 1), current_lead_days=0, current_quote=None
    )
    OrderLine.objects.update(current_delivery_date=None, requote_count=9, slip_days=-3)

    out = _run("--fix")

    assert "4 orders and 6 lines stored a schedule that differs" in out
    assert out.rstrip().endswith("rewritten.")
    _assert_stored_equals_history()
    assert orders[0].quotes.count() == 3  # the history itself is untouched
    assert "every stored schedule matches its history" in _run()


def test_lead_time_counts_changed_behind_the_signals_are_reported_and_fixed() -> None:
    """Guards the lead-time tally's check: an order's vendor changed by QuerySet.update leaves
    its counts stale, a counter changed by hand leaves the tally off the orders' sum;
    both are reported (exit 1), --fix repairs both, and the tally is then the history's."""
    first, *_ = _orders(2)
    PurchaseOrder.objects.filter(pk=first.pk).update(vendor=VendorFactory())
    LeadTimeTally.objects.filter(pk=LeadTimeTally.objects.order_by("pk")[0].pk).update(
        quotes=F("quotes") + 5
    )

    with pytest.raises(CommandError) as failed:
        _run()
    assert "1 orders' lead-time counts and 1 counters of the lead-time tally differ" in str(
        failed.value
    )
    assert "(e.g. PO-CHK-0)" in str(failed.value)

    _run("--fix")
    assert stored_lead_times() == recomputed_lead_times()
    assert "every stored schedule matches its history" in _run()


def test_sample_checks_at_most_n_orders() -> None:
    """Guards --sample N: only N orders are read and (with --fix) rewritten; a sample larger
    than the table checks every order; N below 1 is refused."""
    _orders(5)  # six orders, every one of them made stale below
    PurchaseOrder.objects.update(slip_days=999)

    with pytest.raises(CommandError, match=r"Checked 2 orders: 2 orders and 0 lines"):
        _run("--sample", "2")
    assert "Checked 2 orders: 2 orders and 0 lines" in _run("--sample", "2", "--fix")
    assert schedules.drift().orders == 4  # the other four were not touched

    with pytest.raises(CommandError, match=r"Checked 6 orders: 4 orders and 0 lines"):
        _run("--sample", "100")
    with pytest.raises(CommandError, match="--sample must be at least 1"):
        _run("--sample", "0")
