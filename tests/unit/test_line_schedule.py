"""LineSchedule, kept by database triggers, agrees with orders.slips.line_schedule whatever
path the quotes and lines take in: one at a time, in bulk (one statement), back-dated,
line-level, lines added after the quotes, quotes or lines removed."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta

import pytest
from django.db import connection, transaction
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from orders import db_schedule
from orders.models import DeliveryQuote, GpuModel, LineSchedule, OrderLine, PurchaseOrder
from orders.slips import line_schedule
from tests.conftest import run_at_once
from tests.factories import GpuModelFactory, OrderLineFactory, PurchaseOrderFactory

pytestmark = pytest.mark.django_db

PLACED = date(2023, 4, 14)
Row = tuple[int, date, date, int, date, date, int, int]


def D(month: int, day: int) -> date:
    return date(2023, month, day)


def gpu() -> GpuModel:
    return GpuModelFactory(name=f"GPU {GpuModel.objects.count()}")


def line_of(order: PurchaseOrder) -> OrderLine:
    return OrderLineFactory(order=order, gpu_model=gpu())


def expected(order: PurchaseOrder) -> dict[int, Row]:
    """Each line's schedule by the Python rule, from the order's quotes."""
    quotes = sorted(DeliveryQuote.objects.filter(order=order), key=lambda q: (q.quoted_on, q.id))
    found = {}
    for line_id in OrderLine.objects.filter(order=order).values_list("id", flat=True):
        plan = line_schedule(quotes, line_id)
        if plan is not None:
            base, cur, count = plan
            found[line_id] = (
                base.id,
                base.quoted_on,
                base.delivery_date,
                cur.id,
                cur.quoted_on,
                cur.delivery_date,
                count,
                order.id,
            )
    return found


def stored(order: PurchaseOrder) -> dict[int, Row]:
    return {
        s.line_id: (
            s.baseline_quote_id,
            s.baseline_quoted_on,
            s.baseline_delivery_date,
            s.current_quote_id,
            s.current_quoted_on,
            s.current_delivery_date,
            s.quote_count,
            s.order_id,
        )
        for s in LineSchedule.objects.filter(order=order)
    }


def test_order_level_then_line_level_quotes() -> None:
    order = PurchaseOrderFactory(placed_on=PLACED)
    a, b = line_of(order), line_of(order)
    assert stored(order) == {}
    first = DeliveryQuote.objects.create(
        order=order, quoted_on=PLACED, delivery_date=PLACED + timedelta(days=31)
    )
    own = DeliveryQuote.objects.create(
        order=order, line=b, quoted_on=PLACED + timedelta(days=5), delivery_date=date(2023, 9, 1)
    )
    schedule = LineSchedule.objects.get(line=b)
    assert (schedule.baseline_quote_id, schedule.current_quote_id, schedule.quote_count) == (
        first.id,
        own.id,
        2,
    )
    assert LineSchedule.objects.get(line=a).current_quote_id == first.id
    assert stored(order) == expected(order)


def test_a_back_dated_quote_becomes_the_baseline() -> None:
    order = PurchaseOrderFactory(placed_on=PLACED)
    line_of(order)
    DeliveryQuote.objects.create(order=order, quoted_on=date(2023, 5, 1), delivery_date=D(9, 1))
    early = DeliveryQuote.objects.create(order=order, quoted_on=PLACED, delivery_date=D(5, 15))
    assert LineSchedule.objects.get(order=order).baseline_quote_id == early.id
    assert stored(order) == expected(order)


def test_a_line_added_after_the_quotes_gets_the_order_level_ones() -> None:
    order = PurchaseOrderFactory(placed_on=PLACED)
    DeliveryQuote.objects.create(order=order, quoted_on=PLACED, delivery_date=D(5, 15))
    assert stored(order) == {}
    line = line_of(order)
    assert LineSchedule.objects.get(line=line).quote_count == 1
    assert stored(order) == expected(order)


def test_bulk_quotes_in_one_statement() -> None:
    orders = [PurchaseOrderFactory(placed_on=PLACED) for _ in range(3)]
    for order in orders:
        line_of(order)
    DeliveryQuote.objects.bulk_create(
        DeliveryQuote(order=order, quoted_on=PLACED + timedelta(days=i), delivery_date=due)
        for order in orders
        for i, due in enumerate([D(5, 15), D(7, 14), D(12, 15)])
    )
    for order in orders:
        assert stored(order) == expected(order)
        assert LineSchedule.objects.get(order=order).quote_count == 3


def test_removing_quotes_lines_and_orders_leaves_nothing_stale() -> None:
    order = PurchaseOrderFactory(placed_on=PLACED)
    a, b = line_of(order), line_of(order)
    DeliveryQuote.objects.create(order=order, quoted_on=PLACED, delivery_date=D(5, 15))
    later = DeliveryQuote.objects.create(order=order, quoted_on=D(5, 1), delivery_date=D(12, 1))
    later.delete()  # outside the admin (quotes are history there), but the table must follow
    assert stored(order) == expected(order)
    assert LineSchedule.objects.get(line=a).quote_count == 1
    b.delete()
    assert set(stored(order)) == {a.id}
    order.delete()
    assert not LineSchedule.objects.exists()


def test_rebuild_gives_what_the_triggers_kept() -> None:
    order = PurchaseOrderFactory(placed_on=PLACED)
    line = line_of(order)
    DeliveryQuote.objects.create(order=order, quoted_on=PLACED, delivery_date=D(5, 15))
    DeliveryQuote.objects.create(order=order, line=line, quoted_on=D(6, 1), delivery_date=D(8, 1))
    before = stored(order)
    db_schedule.rebuild(connection)
    assert stored(order) == before == expected(order)


quote_plans = st.lists(
    st.tuples(
        st.integers(0, 60),  # quoted this many days after placing
        st.integers(0, 300),  # due this many days after being quoted
        st.sampled_from([None, 0, 1]),  # the whole order, or line 0 or 1
        st.booleans(),  # in the same statement as the previous quote
    ),
    max_size=8,
)


@hypothesis_settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(plans=quote_plans, lines_first=st.booleans())
def test_any_history_agrees_with_the_python_rule(
    plans: list[tuple[int, int, int | None, bool]], lines_first: bool
) -> None:
    order = PurchaseOrderFactory(placed_on=PLACED)
    if lines_first:
        lines = [line_of(order) for _ in range(2)]
    else:
        lines = [
            OrderLine(order=order, gpu_model=gpu(), quantity=8, unit_price=1) for _ in range(2)
        ]
    pending: list[DeliveryQuote] = []
    seen = set()
    for after, lead, line_index, batched in plans:
        quoted_on = PLACED + timedelta(days=after)
        due = quoted_on + timedelta(days=lead)
        if (quoted_on, due, line_index) in seen:  # the same promise twice is refused
            continue
        seen.add((quoted_on, due, line_index))
        if line_index is not None and not lines_first:
            line_index = None  # lines do not exist yet
        if not batched and pending:
            DeliveryQuote.objects.bulk_create(pending)
            pending = []
        line = lines[line_index] if line_index is not None else None
        pending.append(
            DeliveryQuote(order=order, line=line, quoted_on=quoted_on, delivery_date=due)
        )
    if pending:
        DeliveryQuote.objects.bulk_create(pending)
    if not lines_first:
        OrderLine.objects.bulk_create(lines)
    assert stored(order) == expected(order)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_transactions_adding_quotes_to_one_order_at_once_both_count() -> None:
    """Each trigger run would miss the other's uncommitted quote; the order lock makes the
    second wait and then see the first."""
    order = PurchaseOrderFactory(placed_on=PLACED)
    line_of(order)
    dues = iter([D(6, 1), D(9, 1)])
    lock = threading.Lock()

    def add_quote_and_linger() -> None:
        with lock:
            due = next(dues)
        with transaction.atomic():
            DeliveryQuote.objects.create(order=order, quoted_on=PLACED, delivery_date=due)
            time.sleep(0.3)  # still uncommitted while the other thread inserts

    outcomes = run_at_once(add_quote_and_linger)

    assert outcomes == [None, None]
    assert LineSchedule.objects.get(order=order).quote_count == 2
    assert stored(order) == expected(order)
