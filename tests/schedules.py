"""The stored schedule's oracle for tests: an order's figures and the lead-time tally
recomputed from the history as the database holds it, read here rather than through
orders.schedules."""

from __future__ import annotations

from collections import Counter

from orders.models import DeliveryQuote, LeadTimeTally, OrderLine, PurchaseOrder
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
