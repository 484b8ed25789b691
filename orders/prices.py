"""Price history and price-rise alerts.

Prices come from the admin, from price sheets (import_prices), and from order lines: what a
vendor actually charged is a quote on the day the order was placed. The scan judges the state
of every (vendor, GPU model, currency) history, like the slip scan: it raises what is true and
not yet alerted, whatever was missed before.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import transaction
from django.db.models import Exists, OuterRef, QuerySet
from django.utils import timezone

from orders import history, permissions
from orders.bulk import insert_ignoring_conflicts, insert_notices
from orders.models import OrderLine, PriceAlert, PriceQuote, PurchaseOrder
from orders.price_rules import PricePoint, PriceRise, price_change, price_rise

Group = tuple[int, int, str]  # vendor id, GPU model id, currency


@dataclass
class PriceScanResult:
    groups: int = 0
    findings: int = 0
    new_alerts: int = 0
    notices: int = 0
    line_prices_added: int = 0


def threshold_percent() -> Decimal:
    return Decimal(str(settings.PRICE_RISE_THRESHOLD_PERCENT))


def order_line_prices_sync() -> int:
    """Record each order line's unit price as that vendor's quote on the order date, for lines
    not recorded yet (drafts and cancelled orders were never charged). One read, one write."""
    recorded = PriceQuote.objects.filter(
        **{name: OuterRef(path) for name, path in permissions.ORDER_PRICE_KEY.items()}
    )
    rows = list(
        OrderLine.objects.exclude(
            order__status__in=[PurchaseOrder.Status.DRAFT, PurchaseOrder.Status.CANCELLED]
        )
        .filter(unit_price__gt=0)
        .exclude(Exists(recorded))
        .order_by()
        .values_list(*permissions.ORDER_PRICE_KEY.values(), "order__po_number")
        .distinct()
    )
    with history.acting(reason="order_line_prices_sync: charged on order lines"):
        added = insert_ignoring_conflicts(
            PriceQuote,
            columns=(*permissions.ORDER_PRICE_KEY, "note"),
            rows=[(*row[:-1], f"Charged on {row[-1]}") for row in rows],
            constants={"source": PriceQuote.Source.ORDER, "created_at": timezone.now()},
        )
    return len(added)


def price_histories(prices: QuerySet[PriceQuote] | None = None) -> dict[Group, list[PricePoint]]:
    """Every price point (of `prices`: all when None), grouped by vendor, GPU model and
    currency. One query."""
    histories: dict[Group, list[PricePoint]] = defaultdict(list)
    for pk, vendor_id, gpu_model_id, currency, quoted_on, unit_price in (
        (PriceQuote.objects.all() if prices is None else prices)
        .order_by()
        .values_list("id", "vendor_id", "gpu_model_id", "currency", "quoted_on", "unit_price")
        .iterator(chunk_size=5000)
    ):
        histories[(vendor_id, gpu_model_id, currency)].append(PricePoint(pk, quoted_on, unit_price))
    return histories


def price_changes(
    *, window_days: int | None = None, prices: QuerySet[PriceQuote] | None = None
) -> dict[Group, PriceRise | None]:
    """The latest price against the window's low for every history of `prices` (all when
    None; for a page, the prices its user may see: orders.permissions.visible_prices)."""
    window = settings.PRICE_RISE_WINDOW_DAYS if window_days is None else window_days
    return {
        group: price_change(points, window_days=window)
        for group, points in price_histories(prices).items()
    }


@transaction.atomic
def scan_prices(*, today: date | None = None) -> PriceScanResult:
    """Raise a price_rise alert for every history whose latest price is a new high over its
    window's low, and note who must hear about it: the buyers of open orders for that GPU
    model who may see the alert's prices, and the procurement managers. Safe to run twice at
    once (unique per price)."""
    del today  # the rule looks at the price history only; kept for a uniform scan signature
    result = PriceScanResult(line_prices_added=order_line_prices_sync())
    histories = price_histories()
    result.groups = len(histories)
    # The highest price already alerted per history: a re-quote at or below it is no news.
    alerted: dict[Group, Decimal] = {}
    for vendor_id, gpu_model_id, currency, unit_price in PriceAlert.objects.values_list(
        "vendor_id", "gpu_model_id", "currency", "price__unit_price"
    ):
        group = (vendor_id, gpu_model_id, currency)
        alerted[group] = max(unit_price, alerted.get(group, unit_price))

    threshold, window = threshold_percent(), settings.PRICE_RISE_WINDOW_DAYS
    rows = []
    for group, points in histories.items():
        rise = price_rise(points, threshold_percent=threshold, window_days=window)
        if rise is None:
            continue
        result.findings += 1
        if group in alerted and rise.latest.unit_price <= alerted[group]:
            continue
        rows.append(
            (*group, rise.latest.id, rise.low.id, round(rise.percent, 2), rise.message[:300])
        )
    created = insert_ignoring_conflicts(
        PriceAlert,
        columns=(
            "vendor_id",
            "gpu_model_id",
            "currency",
            "price_id",
            "low_id",
            "rise_percent",
            "message",
        ),
        rows=rows,
        constants={"detected_at": timezone.now()},
        returning=("pk", "gpu_model_id"),
    )
    result.new_alerts = len(created)
    if created:
        recipients = price_recipients({gpu_model_id for _, gpu_model_id in created})
        hidden = price_alerts_hidden(
            [alert_id for alert_id, _ in created],
            {user_id for users in recipients.values() for user_id, _ in users if user_id},
        )
        result.notices = insert_notices(
            [
                (alert_id, user_id, email, 0)
                for alert_id, gpu_model_id in created
                for user_id, email in recipients.get(gpu_model_id, ())
                if (alert_id, user_id) not in hidden
            ],
            about=PriceAlert,
        )
    return result


def price_alerts_hidden(alert_ids: list[int], user_ids: set[int]) -> set[tuple[int, int]]:
    """(alert id, user id) for each of these price alerts a user may not see
    (orders.permissions.visible_price_alerts): a buyer who sees only their own orders is not
    told of a rise to, or from, another buyer's order price. A query per user who does not
    see every order, besides reading their permissions."""
    hidden: set[tuple[int, int]] = set()
    alerts = PriceAlert.objects.filter(pk__in=alert_ids)
    for user in get_user_model().objects.filter(pk__in=user_ids):
        if permissions.view_scope(user) is permissions.Scope.ALL:
            continue
        seen = set(permissions.visible_price_alerts(alerts, user).values_list("pk", flat=True))
        hidden.update((alert_id, user.pk) for alert_id in alert_ids if alert_id not in seen)
    return hidden


def price_recipients(gpu_model_ids: set[int]) -> dict[int, list[tuple[int | None, str]]]:
    """Who hears about a GPU model's price: buyers of its open orders who are active and have
    an address, then the procurement managers (by address only). One query."""
    found: dict[int, dict[str, int | None]] = defaultdict(dict)
    for gpu_model_id, user_id, email in (
        OrderLine.objects.filter(
            gpu_model_id__in=gpu_model_ids,
            order__status__in=PurchaseOrder.OPEN_STATUSES,
            order__buyer__is_active=True,
        )
        .exclude(order__buyer__email="")
        .order_by()
        .values_list("gpu_model_id", "order__buyer_id", "order__buyer__email")
        .distinct()
    ):
        found[gpu_model_id][email] = user_id
    for gpu_model_id in gpu_model_ids:
        for email in settings.PROCUREMENT_MANAGERS:
            found[gpu_model_id].setdefault(email, None)
    return {
        gpu_model_id: [(user_id, email) for email, user_id in users.items()]
        for gpu_model_id, users in found.items()
    }
