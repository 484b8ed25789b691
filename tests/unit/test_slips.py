"""The slip rules, at, just below and just above each threshold, and their invariants."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from orders.slips import (
    RANK,
    Code,
    OrderFacts,
    Quote,
    Thresholds,
    evaluate,
    line_schedule,
    schedule,
    worst,
)

D = date.fromisoformat
PLACED = D("2023-04-14")
DEFAULT = Thresholds()


def order(
    *deliveries: str,
    placed_on: date = PLACED,
    need_by: str | None = None,
    status: str = "confirmed",
    fully_received: bool = False,
) -> OrderFacts:
    """An order-level quote history: one quote a day from placed_on, due on the given dates."""
    quotes = [
        Quote(id=i + 1, quoted_on=placed_on + timedelta(days=i), delivery_date=D(d))
        for i, d in enumerate(deliveries)
    ]
    return OrderFacts(
        placed_on=placed_on,
        status=status,
        quotes=quotes,
        need_by=D(need_by) if need_by else None,
        fully_received=fully_received,
    )


def codes(facts: OrderFacts, today: str = "2023-04-20", thresholds: Thresholds = DEFAULT) -> set:
    return {f.code for f in evaluate(facts, D(today), thresholds)}


# 2023-04-14 + 30 days = 2023-05-14; + 89 = 07-12; + 90 = 07-13; + 91 = 07-14.
@pytest.mark.parametrize(
    ("deliveries", "expected"),
    [
        (("2023-05-14", "2023-07-12"), False),  # 30 -> 89 days: x2.97, just below 3x
        (("2023-05-14", "2023-07-13"), True),  # 30 -> 90: exactly 3x
        (("2023-05-14", "2023-07-14"), True),  # 30 -> 91: just above
        (("2023-05-14",), False),  # one quote: x1
        (("2023-04-14", "2023-12-15"), False),  # zero-day baseline cannot be multiplied
    ],
)
def test_lead_time_multiplied(deliveries: tuple, expected: bool) -> None:
    assert (Code.LEAD_TIME_MULTIPLIED in codes(order(*deliveries))) is expected


@pytest.mark.parametrize(
    ("current", "expected"),
    [("2023-07-12", False), ("2023-07-13", True), ("2023-07-14", True)],  # 89, 90, 91 days
)
def test_lead_time_over_limit(current: str, expected: bool) -> None:
    assert (Code.LEAD_TIME_OVER_LIMIT in codes(order("2023-07-01", current))) is expected


@pytest.mark.parametrize(
    ("deliveries", "expected"),
    [
        (("2023-05-15", "2023-11-30"), False),  # the day before December
        (("2023-05-15", "2023-12-01"), True),  # first day of December
        (("2023-05-15", "2023-12-15"), True),  # the April order told "December"
        (("2023-05-15", "2024-01-10"), True),  # past December still counts: monotonic
        (("2023-12-05", "2023-12-20"), False),  # baseline already in December
        (("2023-12-05", "2024-12-02"), True),  # ... and then pushed into the next one
        (("2023-12-15",), False),  # a first quote in December is not a move
    ],
)
def test_december_delivery(deliveries: tuple, expected: bool) -> None:
    assert (Code.DECEMBER_DELIVERY in codes(order(*deliveries))) is expected


def test_watched_months_are_configurable() -> None:
    summer = Thresholds(watched_months=frozenset({7, 8}))
    assert Code.DECEMBER_DELIVERY in codes(order("2023-05-15", "2023-07-02"), thresholds=summer)
    assert Code.DECEMBER_DELIVERY not in codes(order("2023-05-15", "2023-06-30"), thresholds=summer)
    found = evaluate(order("2023-05-15", "2023-12-15"), D("2023-04-20"), summer)
    assert "past July 2023" in {f.code: f.message for f in found}[Code.DECEMBER_DELIVERY]
    none = Thresholds(watched_months=frozenset())
    assert Code.DECEMBER_DELIVERY not in codes(order("2023-05-15", "2023-12-15"), thresholds=none)


@pytest.mark.parametrize(
    ("need_by", "expected"),
    [("2023-06-16", True), ("2023-06-17", False), ("2023-06-18", False), (None, False)],
)
def test_past_need_by(need_by: str | None, expected: bool) -> None:
    facts = order("2023-05-15", "2023-06-17", need_by=need_by)
    assert (Code.PAST_NEED_BY in codes(facts)) is expected


@pytest.mark.parametrize(
    ("today", "fully_received", "expected"),
    [
        ("2023-05-14", False, False),  # the day before
        ("2023-05-15", False, False),  # due today: not late yet
        ("2023-05-16", False, True),  # the day after
        ("2023-05-16", True, False),  # delivered: never overdue
    ],
)
def test_overdue(today: str, fully_received: bool, expected: bool) -> None:
    facts = order("2023-05-15", fully_received=fully_received)
    assert (Code.OVERDUE in codes(facts, today=today)) is expected


@pytest.mark.parametrize("status", ["cancelled", "received", "draft"])
def test_closed_orders_raise_nothing(status: str) -> None:
    facts = order("2023-05-15", "2023-12-15", need_by="2023-06-01", status=status)
    assert codes(facts, today="2024-06-01") == set()


def test_partially_received_orders_are_still_checked() -> None:
    facts = order("2023-05-15", "2023-12-15", status="partially_received")
    assert Code.LEAD_TIME_MULTIPLIED in codes(facts)


def test_market_one_month_becoming_three() -> None:
    """30 -> 90 days, the shortage's signature: multiplied and at the 90-day limit."""
    found = evaluate(order("2023-05-14", "2023-07-13"), D("2023-04-20"), DEFAULT)
    assert [f.code for f in found] == [Code.LEAD_TIME_MULTIPLIED, Code.LEAD_TIME_OVER_LIMIT]
    assert found[0].message == ("Lead time 30 -> 90 days (x3.0), at least 3x the first quote.")


def test_market_april_order_pushed_to_december() -> None:
    facts = order("2023-05-15", "2023-08-31", "2023-12-15", need_by="2023-09-30")
    found = evaluate(facts, D("2023-07-21"), DEFAULT)
    assert [f.code for f in found] == [
        Code.PAST_NEED_BY,
        Code.LEAD_TIME_MULTIPLIED,
        Code.DECEMBER_DELIVERY,
        Code.LEAD_TIME_OVER_LIMIT,
    ]
    assert {f.quote_id for f in found} == {3}  # all triggered by the December re-quote
    messages = {f.code: f.message for f in found}
    assert messages[Code.LEAD_TIME_MULTIPLIED].startswith("Lead time 31 -> 245 days (x7.9)")
    assert messages[Code.DECEMBER_DELIVERY] == (
        "Delivery moved from 2023-05-15 to 2023-12-15, into December 2023."
    )
    assert messages[Code.PAST_NEED_BY] == (
        "Delivery 2023-12-15 is 76 days after the need-by date 2023-09-30."
    )


def test_leap_year_days_are_counted() -> None:
    # 2024-02-01 -> 2024-03-02 is 30 days in a leap year; x3 = 90 days = 2024-05-01.
    facts = order("2024-03-02", "2024-05-01", placed_on=D("2024-02-01"))
    assert Code.LEAD_TIME_MULTIPLIED in codes(facts, today="2024-02-02")
    facts = order("2024-03-02", "2024-04-30", placed_on=D("2024-02-01"))
    assert Code.LEAD_TIME_MULTIPLIED not in codes(facts, today="2024-02-02")


def test_same_day_requotes_the_later_entry_is_current() -> None:
    quotes = [
        Quote(1, PLACED, D("2023-05-15")),
        Quote(2, D("2023-06-01"), D("2023-12-15")),
        Quote(3, D("2023-06-01"), D("2023-07-01")),  # same day, entered later: it stands
    ]
    plan = schedule(quotes)
    assert (plan.baseline.id, plan.current.id) == (1, 3)


def test_line_quotes_override_for_their_line_and_the_order_waits_for_its_last_line() -> None:
    quotes = [
        Quote(1, D("2023-04-05"), D("2023-05-08")),
        Quote(2, D("2023-04-28"), D("2023-07-14"), line_id=10),
    ]
    plan = schedule(quotes, line_ids=[10, 11])
    assert (plan.baseline.delivery_date, plan.current.delivery_date) == (
        D("2023-05-08"),
        D("2023-07-14"),
    )
    assert plan.current.id == 2


def test_line_schedule_takes_the_order_level_quotes_and_the_lines_own() -> None:
    quotes = [
        Quote(1, D("2023-04-05"), D("2023-05-08")),
        Quote(2, D("2023-04-28"), D("2023-07-14"), line_id=10),
        Quote(3, D("2023-05-02"), D("2023-07-01"), line_id=11),
    ]
    assert line_schedule(quotes, 10) == (quotes[0], quotes[1], 2)
    assert line_schedule(quotes, 12) == (quotes[0], quotes[0], 1)
    assert line_schedule(quotes[1:], 12) is None


def test_worst_finding() -> None:
    assert worst(["lead_time_over_limit", "overdue", "december_delivery"]) == Code.OVERDUE
    assert worst([]) is None


# --- Properties ------------------------------------------------------------------------------

dates = st.dates(min_value=D("2020-01-01"), max_value=D("2030-12-31"))


@st.composite
def histories(draw: st.DrawFn) -> tuple[OrderFacts, date]:
    placed = draw(dates)
    n = draw(st.integers(1, 5))
    quotes = []
    quoted_on = placed
    for i in range(n):
        quoted_on += timedelta(days=draw(st.integers(0, 60)))
        due = quoted_on + timedelta(days=draw(st.integers(0, 400)))
        quotes.append(Quote(i + 1, quoted_on, due))
    need_by = draw(st.none() | st.integers(0, 400).map(lambda d: placed + timedelta(days=d)))
    facts = OrderFacts(placed_on=placed, status="confirmed", quotes=quotes, need_by=need_by)
    today = quoted_on + timedelta(days=draw(st.integers(0, 30)))
    return facts, today


thresholds = st.builds(
    Thresholds,
    lead_time_factor=st.floats(1.0, 10.0),
    lead_time_limit_days=st.integers(1, 365),
    watched_months=st.frozensets(st.integers(1, 12), max_size=3),
)


@given(histories(), st.integers(0, 500), thresholds)
def test_pushing_the_date_later_never_clears_a_finding(
    history: tuple[OrderFacts, date], push: int, limits: Thresholds
) -> None:
    """A re-quote later than the current date keeps every finding. Overdue is the exception
    by definition: a new date in the future ends the lateness (the alert raised stays)."""
    facts, today = history
    before = {f.code for f in evaluate(facts, today, limits)} - {Code.OVERDUE}
    last = facts.quotes[-1]
    later = Quote(last.id + 1, today, max(last.delivery_date, today) + timedelta(days=push))
    after_facts = OrderFacts(
        placed_on=facts.placed_on,
        status=facts.status,
        quotes=[*facts.quotes, later],
        need_by=facts.need_by,
    )
    after = {f.code for f in evaluate(after_facts, today, limits)}
    assert before <= after


@given(histories(), thresholds)
def test_findings_name_the_current_quote_and_come_worst_first(
    history: tuple[OrderFacts, date], limits: Thresholds
) -> None:
    facts, today = history
    found = evaluate(facts, today, limits)
    current = schedule(facts.quotes).current.id
    assert all(f.quote_id == current for f in found)
    ranks = [RANK[f.code] for f in found]
    assert ranks == sorted(ranks)
    assert len({f.code for f in found}) == len(found)
