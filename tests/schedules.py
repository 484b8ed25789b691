"""The stored schedule's oracle for tests: an order's figures and the tallies (lead times,
vendor scorecards, orders and open alerts) recomputed from the history as the database
holds it, read here rather than through orders.schedules."""

from __future__ import annotations

from collections import Counter
from typing import Any

from orders.models import (
    Delivery,
    DeliveryQuote,
    LeadTimeTally,
    OrderLine,
    OrderTally,
    PurchaseOrder,
    SlipAlert,
    VendorScoreTally,
    open_alert_q,
)
from orders.slips import LeadTimeKey, OrderFigures, Quote, lead_time_counts, order_figures


def _history(order: PurchaseOrder) -> list[Quote]:
    return [
        Quote(pk, quoted_on, delivery_date, line_id)
        for pk, quoted_on, delivery_date, line_id in DeliveryQuote.objects.filter(
            order=order
        ).values_list("pk", "quoted_on", "delivery_date", "line_id")
    ]


def recomputed(order: PurchaseOrder) -> OrderFigures:
    """`order_figures` of the order's quotes and lines, as they are now."""
    lines = OrderLine.objects.filter(order=order).values_list("pk", flat=True)
    return order_figures(order.placed_on, _history(order), lines)


def recomputed_lead_times() -> Counter[LeadTimeKey]:
    """The lead-time tally as every order's quotes and lines make it now."""
    tally: Counter[LeadTimeKey] = Counter()
    for order in PurchaseOrder.objects.all():
        models = dict(OrderLine.objects.filter(order=order).values_list("pk", "gpu_model_id"))
        tally.update(lead_time_counts(order.placed_on, order.vendor_id, _history(order), models))
    return tally


def stored_lead_times() -> Counter[LeadTimeKey]:
    """The lead-time tally as stored, without its counters at 0."""
    return Counter(
        {
            (month, vendor, gpu_model, lead): n
            for month, vendor, gpu_model, lead, n in LeadTimeTally.objects.exclude(
                quotes=0
            ).values_list("month", "vendor_pk", "gpu_model_pk", "lead_days", "quotes")
        }
    )


def recomputed_scores() -> dict[int, tuple[Any, ...]]:
    """Per vendor pk, the scorecard's sums read straight from orders, lines, receipts and
    alerts: (orders, units, received, on time, on time against the latest date, re-quotes,
    orders with open alerts, every quoted order's slip in order)."""
    sums: dict[int, list[Any]] = {}
    for order in PurchaseOrder.objects.exclude(status=PurchaseOrder.Status.DRAFT):
        units = sum(OrderLine.objects.filter(order=order).values_list("quantity", flat=True))
        receipts = list(Delivery.objects.filter(order=order).values_list("delivered_on", flat=True))
        last = max(receipts) if receipts else None
        received = order.status == PurchaseOrder.Status.RECEIVED and last is not None
        row = sums.setdefault(order.vendor_id, [0, 0, 0, 0, 0, 0, 0, []])
        row[0] += 1
        row[1] += units
        row[2] += received
        row[3] += bool(
            received and order.baseline_delivery_date and last <= order.baseline_delivery_date
        )
        row[4] += bool(
            received and order.current_delivery_date and last <= order.current_delivery_date
        )
        row[5] += order.requote_count
        row[6] += SlipAlert.objects.filter(open_alert_q(), order=order).exists()
        if order.slip_days is not None:
            row[7].append(order.slip_days)
    return {pk: (*row[:7], sorted(row[7])) for pk, row in sums.items()}


def stored_scores() -> dict[int, tuple[Any, ...]]:
    """The same, as the scorecards' tally holds it (vendors with no order left out)."""
    sums: dict[int, list[Any]] = {}
    for row in VendorScoreTally.objects.order_by("slip_days"):
        if not row.orders:
            continue
        found = sums.setdefault(row.vendor_pk, [0, 0, 0, 0, 0, 0, 0, []])
        for i, name in enumerate(
            ("orders", "units", "received", "on_time", "on_time_latest", "requotes", "open_alerts")
        ):
            found[i] += getattr(row, name)
        if row.quoted:
            found[7].extend([row.slip_days] * row.orders)
    return {pk: (*row[:7], sorted(row[7])) for pk, row in sums.items()}


def recomputed_order_tally() -> Counter[tuple[Any, ...]]:
    """The order tally as the orders and alerts make it now: per (vendor pk, buyer pk,
    status, slipping, code, severity), the orders (code "") and their open alerts."""
    tally: Counter[tuple[Any, ...]] = Counter()
    for order in PurchaseOrder.objects.all():
        key = (order.vendor_id, order.buyer_id, order.status, (order.slip_days or 0) > 0)
        tally[(*key, "", "")] += 1
        for code, severity in SlipAlert.objects.filter(open_alert_q(), order=order).values_list(
            "code", "severity"
        ):
            tally[(*key, code, severity)] += 1
    return tally


def stored_order_tally() -> Counter[tuple[Any, ...]]:
    """The same, as stored, without its counters at 0."""
    keys = ("vendor_pk", "buyer_pk", "status", "slipping", "code", "severity")
    return Counter(
        {tuple(key): n for *key, n in OrderTally.objects.exclude(n=0).values_list(*keys, "n")}
    )
