"""Slip rules: plain functions of an order's quote history, receipts, need-by date and today.

No ORM here. The one definition of an order's schedule: a line's applicable quotes are the
order-level ones plus its own; earliest (by quoted_on, then id) is baseline, latest current;
the order's dates are the latest of its lines' (orders without lines: their order-level
quotes). `order_figures()` is what orders.schedules stores on orders and lines; the scan
(orders.alerts) reads those columns and calls `judge()` on them; `evaluate()` judges one
order from its whole quote history.
"""

from __future__ import annotations

import calendar
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from enum import StrEnum
from functools import cache
from operator import attrgetter
from typing import TypeVar


class Code(StrEnum):
    LEAD_TIME_MULTIPLIED = "lead_time_multiplied"
    LEAD_TIME_OVER_LIMIT = "lead_time_over_limit"
    DECEMBER_DELIVERY = "december_delivery"
    PAST_NEED_BY = "past_need_by"
    OVERDUE = "overdue"


class Severity(StrEnum):
    WARNING = "warning"
    CRITICAL = "critical"


SEVERITY = {
    Code.PAST_NEED_BY: Severity.CRITICAL,
    Code.OVERDUE: Severity.CRITICAL,
    Code.LEAD_TIME_MULTIPLIED: Severity.WARNING,
    Code.DECEMBER_DELIVERY: Severity.WARNING,
    Code.LEAD_TIME_OVER_LIMIT: Severity.WARNING,
}
# Worst first: used to name the worst finding in an email subject.
RANK = {code: i for i, code in enumerate(SEVERITY)}
OPEN_STATUSES = frozenset({"placed", "confirmed", "partially_received"})


@dataclass(frozen=True)
class Quote:
    id: int
    quoted_on: date
    delivery_date: date
    line_id: int | None = None


@dataclass(frozen=True)
class OrderFacts:
    placed_on: date
    status: str
    quotes: Sequence[Quote]
    line_ids: Sequence[int] = ()
    need_by: date | None = None
    fully_received: bool = False


@dataclass(frozen=True)
class Thresholds:
    lead_time_factor: float = 3.0
    lead_time_limit_days: int = 90
    watched_months: frozenset[int] = field(default_factory=lambda: frozenset({12}))


@dataclass(frozen=True)
class Schedule:
    baseline: Quote
    current: Quote

    @property
    def slip_days(self) -> int:
        return (self.current.delivery_date - self.baseline.delivery_date).days


@dataclass(frozen=True)
class Finding:
    code: Code
    severity: Severity
    message: str
    quote_id: int  # the quote that made it true: the one giving the current date


T = TypeVar("T")


def line_schedule(
    quotes: Sequence[T],
    line_id: int,
    line_of: Callable[[T], int | None] = attrgetter("line_id"),
) -> tuple[T, T, int] | None:
    """One line's (baseline quote, current quote, how many quotes apply), or None if none.

    `quotes` are the order's, sorted by (quoted_on, id); `line_of` gives a quote's line (None
    for the whole order), so the CSV export can pass its database rows as they come instead
    of building a Quote per row. A plain tuple, not a NamedTuple: refreshing a stored schedule
    calls this once per line, and building one costs more than the rule itself.
    """
    applicable = [q for q in quotes if (line := line_of(q)) is None or line == line_id]
    if not applicable:
        return None
    return applicable[0], applicable[-1], len(applicable)


def _key(quote: Quote) -> tuple[date, int]:
    return (quote.quoted_on, quote.id)


def _latest_finishing(quotes: Iterable[Quote]) -> Quote:
    # The order is complete when its last line is; ties go to the later quote.
    return max(quotes, key=lambda q: (q.delivery_date, _key(q)))


def _order_plan(
    quotes: Sequence[Quote], plans: Iterable[tuple[Quote, Quote, int] | None]
) -> Schedule | None:
    """The order's schedule from its lines' plans (`line_schedule`); `quotes` sorted."""
    per_line = [plan for plan in plans if plan is not None]
    if per_line:
        return Schedule(
            _latest_finishing(b for b, _, _ in per_line),
            _latest_finishing(c for _, c, _ in per_line),
        )
    order_level = [q for q in quotes if q.line_id is None]
    if order_level:
        return Schedule(order_level[0], order_level[-1])
    return None


def schedule(quotes: Iterable[Quote], line_ids: Iterable[int] = ()) -> Schedule | None:
    """Baseline and current quote of an order, or None when it has no applicable quote."""
    quotes = sorted(quotes, key=_key)
    return _order_plan(quotes, (line_schedule(quotes, line_id) for line_id in line_ids))


@dataclass(frozen=True, slots=True)
class Figures:
    """A line's or an order's schedule as the columns of the same names store it (and the
    orders file exports it): dates and days are None until a quote applies."""

    baseline_delivery_date: date | None = None
    current_delivery_date: date | None = None
    baseline_lead_days: int | None = None
    current_lead_days: int | None = None
    slip_days: int | None = None
    requote_count: int = 0


FIGURES = tuple(Figures.__dataclass_fields__)  # the stored columns, in this order


def figures(placed_on: date, baseline: date, current: date, quotes: int) -> Figures:
    """The figures of a schedule placed on `placed_on`, from `quotes` applicable quotes."""
    return Figures(
        baseline,
        current,
        (baseline - placed_on).days,
        (current - placed_on).days,
        (current - baseline).days,
        quotes - 1,
    )


@dataclass(frozen=True, slots=True)
class OrderFigures:
    """What is stored for one order: its own figures, the quote that gives its current
    date, and each line's figures."""

    order: Figures
    current_quote_id: int | None
    lines: dict[int, Figures]


def is_slipping(slip_days: int | None) -> bool:
    """Whether an order (or line) is slipping: its current quoted date is later than the
    first (PurchaseOrderQuerySet.slipping is the same rule as a filter)."""
    return slip_days is not None and slip_days > 0


def order_figures(
    placed_on: date, quotes: Iterable[Quote], line_ids: Iterable[int]
) -> OrderFigures:
    """The stored schedule of an order, from its whole quote history: each line's figures
    (`line_schedule`), and the order's (`schedule`'s dates, every quote but the first a
    re-quote). The one definition behind the schedule columns (orders.schedules writes it)."""
    quotes = sorted(quotes, key=_key)
    plans = {line_id: line_schedule(quotes, line_id) for line_id in line_ids}
    lines = {
        line_id: Figures()
        if plan is None
        else figures(placed_on, plan[0].delivery_date, plan[1].delivery_date, plan[2])
        for line_id, plan in plans.items()
    }
    plan = _order_plan(quotes, plans.values())
    if plan is None:
        return OrderFigures(Figures(), None, lines)
    order = figures(placed_on, plan.baseline.delivery_date, plan.current.delivery_date, len(quotes))
    return OrderFigures(order, plan.current.id, lines)


@cache
def _next_watched_month_start(year: int, month: int, months: frozenset[int]) -> date | None:
    """First day of the first watched month strictly after (year, month). Cached: the scan
    asks it once per order, and there are only so many baseline months."""
    for _ in range(12 if months else 0):
        month += 1
        if month > 12:
            year, month = year + 1, 1
        if month in months:
            return date(year, month, 1)
    return None


def evaluate(order: OrderFacts, today: date, thresholds: Thresholds) -> list[Finding]:
    """Findings for one order, worst first. Closed orders (cancelled, received, draft) and
    orders never quoted raise nothing."""
    if order.status not in OPEN_STATUSES:
        return []
    plan = schedule(order.quotes, order.line_ids)
    if plan is None:
        return []
    return judge(
        placed_on=order.placed_on,
        baseline=plan.baseline.delivery_date,
        current=plan.current.delivery_date,
        current_quote_id=plan.current.id,
        need_by=order.need_by,
        fully_received=order.fully_received,
        today=today,
        thresholds=thresholds,
    )


def judge(
    *,
    placed_on: date,
    baseline: date,
    current: date,
    current_quote_id: int,
    need_by: date | None,
    fully_received: bool,
    today: date,
    thresholds: Thresholds,
) -> list[Finding]:
    """The rules on an open order's schedule: its baseline and current delivery dates (as
    `schedule()` picks them) and the quote giving the current one. Findings come worst first.

    The scan calls this directly with the schedules stored for a whole batch
    (orders.alerts.order_schedules), so it is written for speed: findings are built in rank
    order, with no sorting."""
    base_lead = (baseline - placed_on).days
    cur_lead = (current - placed_on).days
    found: list[Finding] = []
    # In RANK order (SEVERITY's): past_need_by, overdue, lead_time_multiplied, december,
    # over_limit. test_slips checks findings come sorted.
    if need_by is not None and current > need_by:
        found.append(
            Finding(
                Code.PAST_NEED_BY,
                SEVERITY[Code.PAST_NEED_BY],
                f"Delivery {current.isoformat()} is {(current - need_by).days} days after the "
                f"need-by date {need_by.isoformat()}.",
                current_quote_id,
            )
        )
    if today > current and not fully_received:
        found.append(
            Finding(
                Code.OVERDUE,
                SEVERITY[Code.OVERDUE],
                f"Quoted delivery {current.isoformat()} passed {(today - current).days} days "
                "ago and the order is not fully received.",
                current_quote_id,
            )
        )
    # A zero-day baseline (same-day delivery promised) cannot be multiplied meaningfully.
    if base_lead > 0 and cur_lead >= thresholds.lead_time_factor * base_lead:
        found.append(
            Finding(
                Code.LEAD_TIME_MULTIPLIED,
                SEVERITY[Code.LEAD_TIME_MULTIPLIED],
                f"Lead time {base_lead} -> {cur_lead} days (x{cur_lead / base_lead:.1f}), at "
                f"least {thresholds.lead_time_factor:g}x the first quote.",
                current_quote_id,
            )
        )
    watched_start = _next_watched_month_start(
        baseline.year, baseline.month, thresholds.watched_months
    )
    if watched_start is not None and current >= watched_start:
        into = "into" if current.month in thresholds.watched_months else "past"
        found.append(
            Finding(
                Code.DECEMBER_DELIVERY,
                SEVERITY[Code.DECEMBER_DELIVERY],
                f"Delivery moved from {baseline.isoformat()} to {current.isoformat()}, {into} "
                f"{calendar.month_name[watched_start.month]} {watched_start.year}.",
                current_quote_id,
            )
        )
    if cur_lead >= thresholds.lead_time_limit_days:
        found.append(
            Finding(
                Code.LEAD_TIME_OVER_LIMIT,
                SEVERITY[Code.LEAD_TIME_OVER_LIMIT],
                f"Lead time {cur_lead} days, at or over the "
                f"{thresholds.lead_time_limit_days}-day limit.",
                current_quote_id,
            )
        )
    return found


def cleared_reason(
    code: Code,
    *,
    placed_on: date,
    baseline: date,
    current: date,
    need_by: date | None,
    fully_received: bool,
    today: date,
    thresholds: Thresholds,
) -> str:
    """Why the rule `code` no longer holds for this schedule (the one `judge()` found it
    absent from), in the buyer's words, e.g. "delivery now 2026-04-10, not past need-by
    2026-04-30"."""
    cur_lead = (current - placed_on).days
    if code is Code.PAST_NEED_BY:
        if need_by is None:
            return "the need-by date was removed"
        return f"delivery now {current.isoformat()}, not past need-by {need_by.isoformat()}"
    if code is Code.OVERDUE:
        if fully_received:
            return "fully received"
        return f"delivery now {current.isoformat()}, not overdue on {today.isoformat()}"
    if code is Code.LEAD_TIME_MULTIPLIED:
        return (
            f"lead time now {cur_lead} days, under {thresholds.lead_time_factor:g}x the "
            f"first quote's {(baseline - placed_on).days}"
        )
    if code is Code.DECEMBER_DELIVERY:
        watched = _next_watched_month_start(
            baseline.year, baseline.month, thresholds.watched_months
        )
        if watched is None:
            return "no month is watched any more"
        month = f"{calendar.month_name[watched.month]} {watched.year}"
        return f"delivery now {current.isoformat()}, before {month}"
    return f"lead time now {cur_lead} days, under the {thresholds.lead_time_limit_days}-day limit"


def worst(codes: Iterable[str]) -> Code | None:
    ranked = sorted((Code(c) for c in codes), key=RANK.__getitem__)
    return ranked[0] if ranked else None


# --- Lead-time charts ---------------------------------------------------------------------------

EVERY_QUOTE = 0  # the GPU-model key of a tally row that counts each quote once
# (month quoted, vendor pk, GPU model pk or EVERY_QUOTE, quoted lead time in days)
LeadTimeKey = tuple[date, int, int, int]


def lead_time_counts(
    placed_on: date, vendor_id: int, quotes: Iterable[Quote], line_models: Mapping[int, int]
) -> Counter[LeadTimeKey]:
    """How an order's quotes count in the lead-time charts. A quote's lead time is its
    delivery date minus the order's placed-on date, charted in the month it was quoted.

    Each quote counts once under EVERY_QUOTE (the charts of all quotes and per vendor), and
    once per line it applies to under that line's GPU model (`line_models`: line pk -> GPU
    model pk): a whole-order quote for every line, a line's own quote for its line only (not
    at all if that line now belongs to another order)."""
    counts: Counter[LeadTimeKey] = Counter()
    for quote in quotes:
        month = quote.quoted_on.replace(day=1)
        lead = (quote.delivery_date - placed_on).days
        counts[(month, vendor_id, EVERY_QUOTE, lead)] += 1
        if quote.line_id is None:
            models: Iterable[int] = line_models.values()
        else:
            models = [line_models[quote.line_id]] if quote.line_id in line_models else []
        for gpu_model_id in models:
            counts[(month, vendor_id, gpu_model_id, lead)] += 1
    return counts
