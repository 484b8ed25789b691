"""The stored schedule's oracle for tests: an order's figures recomputed from its history as
the database holds it, read here rather than through orders.schedules."""

from __future__ import annotations

from orders.models import DeliveryQuote, OrderLine, PurchaseOrder
from orders.slips import OrderFigures, Quote, order_figures


def recomputed(order: PurchaseOrder) -> OrderFigures:
    """`order_figures` of the order's quotes and lines, as they are now."""
    history = [
        Quote(pk, quoted_on, delivery_date, line_id)
        for pk, quoted_on, delivery_date, line_id in DeliveryQuote.objects.filter(
            order=order
        ).values_list("pk", "quoted_on", "delivery_date", "line_id")
    ]
    lines = OrderLine.objects.filter(order=order).values_list("pk", flat=True)
    return order_figures(order.placed_on, history, lines)
