"""Chart specifications for static/js/charts.js: plain dicts that `json_script` writes into the
page and the script hands to Chart.js. Dates travel as ISO strings; the script turns them into
time positions and formats axis ticks and tooltips back as dates.

Each page also renders the same numbers as an HTML table (the screen-reader and no-script
fallback), from the same selector output, so the two cannot disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from orders.dashboard import LeadTimeSeries, OrderTimeline, PriceChart, months_of

ONE_MONTH_DAYS = 30
THREE_MONTHS_DAYS = 90


def _month_label(month: date) -> str:
    return month.strftime("%b %Y")


def lead_time_chart(series: Sequence[LeadTimeSeries], *, references: bool = False) -> dict:
    """Months on x, days on y: per series a solid median line and a dashed 90th-percentile
    line in the same colour; optionally the one-month and three-month reference lines."""
    months = months_of(series)
    datasets: list[dict[str, Any]] = []
    for colour, one in enumerate(series):
        by_month = {m.month: m for m in one.months}
        for stat, dashed in (("median_days", False), ("p90_days", True)):
            datasets.append(
                {
                    "label": f"{one.label}: {'90th percentile' if dashed else 'median'}",
                    "data": [
                        None if m not in by_month else round(getattr(by_month[m], stat), 1)
                        for m in months
                    ],
                    "colour": colour,
                    "dashed": dashed,
                }
            )
    if references and months:
        for days, label in ((ONE_MONTH_DAYS, "one month"), (THREE_MONTHS_DAYS, "three months")):
            datasets.append(
                {
                    "label": f"{label} ({days} days)",
                    "data": [days] * len(months),
                    "reference": True,
                }
            )
    return {
        "kind": "line",
        "x": "category",
        "labels": [_month_label(m) for m in months],
        "xTitle": "Month the date was quoted",
        "yTitle": "Quoted lead time (days after the order)",
        "datasets": datasets,
    }


def price_chart(chart: PriceChart) -> dict:
    """Quote dates on x, unit price on y, one line per vendor and currency."""
    return {
        "kind": "line",
        "x": "date",
        "xTitle": "Quoted on",
        "yTitle": "Unit price",
        "datasets": [
            {
                "label": series.label,
                "data": [
                    {"x": p.quoted_on.isoformat(), "y": float(p.unit_price)} for p in series.points
                ],
                "colour": colour,
            }
            for colour, series in enumerate(chart.series)
        ],
    }


def order_timeline_chart(timeline: OrderTimeline) -> dict:
    """Each quote at (quoted on, delivery date it promised), joined per what it applies to;
    the need-by date as a horizontal line; receipts on the day they came; alerts on the
    quote that triggered them."""
    order = timeline.order
    datasets: list[dict[str, Any]] = []
    for colour, (label, quotes) in enumerate(timeline.quote_series().items()):
        datasets.append(
            {
                "label": f"Quotes: {label}",
                "data": [
                    {"x": q.quoted_on.isoformat(), "y": q.delivery_date.isoformat()} for q in quotes
                ],
                "colour": colour,
            }
        )
    days = [order.placed_on]
    days += [q.quoted_on for q in timeline.quotes] + [d.delivered_on for d in timeline.deliveries]
    last = max(days)
    if order.need_by is not None:
        datasets.append(
            {
                "label": f"Need by {order.need_by.isoformat()}",
                "data": [
                    {"x": order.placed_on.isoformat(), "y": order.need_by.isoformat()},
                    {"x": max(last, order.placed_on).isoformat(), "y": order.need_by.isoformat()},
                ],
                "reference": True,
                "colour": "needBy",
            }
        )
    if timeline.deliveries:
        datasets.append(
            {
                "label": "Received",
                "data": [
                    {
                        "x": d.delivered_on.isoformat(),
                        "y": d.delivered_on.isoformat(),
                        "note": f"{d.quantity} x {d.line.gpu_model}",
                    }
                    for d in timeline.deliveries
                ],
                "points": "rectRot",
                "showLine": False,
                "colour": "receipt",
            }
        )
    if timeline.alerts:
        by_quote: dict[int, list[str]] = {}
        for alert in timeline.alerts:
            by_quote.setdefault(alert.quote_id, []).append(alert.get_code_display())
        quotes = {q.pk: q for q in timeline.quotes}
        datasets.append(
            {
                "label": "Alerts raised by this quote",
                "data": [
                    {
                        "x": quotes[quote_id].quoted_on.isoformat(),
                        "y": quotes[quote_id].delivery_date.isoformat(),
                        "note": ", ".join(codes),
                    }
                    for quote_id, codes in by_quote.items()
                    if quote_id in quotes
                ],
                "points": "triangle",
                "showLine": False,
                "colour": "alert",
                "radius": 9,
            }
        )
    return {
        "kind": "line",
        "x": "date",
        "y": "date",
        "xTitle": "Quoted on",
        "yTitle": "Promised delivery date",
        "datasets": datasets,
    }
