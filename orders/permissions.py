"""Who may see and who may change which purchase orders: the one definition.

Everything tied to an order (its lines, quotes, receipts, alerts, allocations) follows the
order. The admin querysets, the dashboard pages and their CSV exports, and the alert
recipients all ask this module (or `PurchaseOrder.objects.visible_to()` / `editable_by()`,
which are written in its terms).

Scopes come from model permissions, so a role is just a group holding them (orders/roles.py):

- sees nothing, changes nothing: an inactive account, or one without view_purchaseorder;
- sees every order: superusers, view_purchaseorder with view_all_purchaseorders (viewers,
  procurement managers), and any user with view_purchaseorder when BUYERS_SEE_ALL_ORDERS;
- else sees their own and watched orders only (buyers);
- changes every order: superusers, change_purchaseorder with change_all_purchaseorders
  (procurement managers);
- changes their own and watched orders only: change_purchaseorder alone (buyers), whatever
  BUYERS_SEE_ALL_ORDERS says.

"Own" means the user is the order's buyer, "watched" that they are one of its watchers.

Prices follow the same rule (`visible_prices`): a market price (entered by hand or from a
price sheet) is for everyone who may read prices; a price charged on an order is seen by those
who see that order. Every figure made from prices (the price trend, the scorecards' price
change, budget exposure's market price, price alerts) is made from the prices the user sees.
"""

from __future__ import annotations

import enum
from typing import Any

from django.conf import settings
from django.contrib.auth.backends import ModelBackend
from django.db.models import Case, CharField, Exists, F, OuterRef, Q, QuerySet, Value, When

VIEW = "orders.view_purchaseorder"
CHANGE = "orders.change_purchaseorder"
VIEW_ALL = "orders.view_all_purchaseorders"
CHANGE_ALL = "orders.change_all_purchaseorders"


class Scope(enum.Enum):
    """Which orders a permission reaches for one user."""

    NONE = "none"
    OWN = "own"  # the orders they buy or watch
    ALL = "all"


def view_scope(user: Any) -> Scope:
    """Which orders `user` may see (and so export, and be emailed about)."""
    if not getattr(user, "is_active", False):
        return Scope.NONE
    if user.is_superuser:
        return Scope.ALL
    if not user.has_perm(VIEW):
        return Scope.NONE
    if user.has_perm(VIEW_ALL) or user.has_perm(CHANGE_ALL) or settings.BUYERS_SEE_ALL_ORDERS:
        return Scope.ALL
    return Scope.OWN


def change_scope(user: Any) -> Scope:
    """Which orders `user` may change (and add lines, quotes and receipts to). Never wider
    than what they see."""
    if not getattr(user, "is_active", False):
        return Scope.NONE
    if user.is_superuser:
        return Scope.ALL
    if not user.has_perm(CHANGE) or view_scope(user) is Scope.NONE:
        return Scope.NONE
    return Scope.ALL if user.has_perm(CHANGE_ALL) else Scope.OWN


def can_change_every_order(user: Any) -> bool:
    """Procurement managers and superusers: what writes to any order at once (CSV imports)
    needs this."""
    return change_scope(user) is Scope.ALL


def can_view_order(user: Any, order_id: int | None) -> bool:
    """Whether `user` may see the order with this id (one query the first time per request
    and order, none when they see every order)."""
    return _allowed(user, order_id, view_scope(user), "view")


def can_change_order(user: Any, order_id: int | None) -> bool:
    """Whether `user` may change the order with this id (as can_view_order)."""
    return _allowed(user, order_id, change_scope(user), "change")


def _allowed(user: Any, order_id: int | None, scope: Scope, kind: str) -> bool:
    if scope is Scope.ALL:
        return True
    if scope is Scope.NONE or order_id is None:
        return False
    # Kept on the user object, as Django keeps its permission cache: a change page asks
    # several times (the page, each inline, each button) within one request.
    cache: dict[tuple[str, int], bool] = user.__dict__.setdefault("_order_access_cache", {})
    key = (kind, order_id)
    if key not in cache:
        from orders.models import PurchaseOrder

        orders = PurchaseOrder.objects.filter(pk=order_id)
        cache[key] = orders.filter(PurchaseOrder.objects.own_q(user)).exists()
    return cache[key]


def users_who_see_their_orders() -> QuerySet[Any]:
    """Active users whose view scope is at least OWN: every order they buy or watch is
    visible to them. The set form of `view_scope(user) is not Scope.NONE`, for looking up
    alert recipients (a buyer or watcher) in one query whatever their number."""
    # ModelBackend directly: with django-axes in front there are two backends, and
    # User.objects.with_perm() would ask which one.
    return ModelBackend().with_perm(VIEW, is_active=True, include_superusers=True)


def may_see_order_q(*, user_path: str, order_path: str) -> Q:
    """The set form of `can_view_order`, for rows that each lead to a user and an order: a
    filter keeping the rows whose user may see whose order (view_scope, and for the OWN scope
    own_q). `user_path` and `order_path` lead from the queryset's model to them ("recipient",
    "alert__order"). Adds no query: the users and watchers become subqueries."""
    viewers = users_who_see_their_orders().values("pk")
    backend = ModelBackend()
    sees_all = Q(**{f"{user_path}__in": viewers})
    if not settings.BUYERS_SEE_ALL_ORDERS:
        # with_perm counts superusers in; view_scope asks VIEW first, as `viewers` does.
        sees_all &= Q(**{f"{user_path}__in": backend.with_perm(VIEW_ALL).values("pk")}) | Q(
            **{f"{user_path}__in": backend.with_perm(CHANGE_ALL).values("pk")}
        )
    from orders.models import PurchaseOrder

    watching = PurchaseOrder.watchers.through.objects.filter(
        purchaseorder_id=OuterRef(order_path), user_id=OuterRef(user_path)
    )
    own = Q(**{f"{order_path}__buyer": F(user_path)}) | Exists(watching)
    return sees_all | (Q(**{f"{user_path}__in": viewers}) & own)


def scoped(queryset: QuerySet[Any], user: Any, *, path: str, change: bool = False) -> QuerySet[Any]:
    """`queryset` (of orders, or of anything tied to one) narrowed to the rows whose order
    `user` may see, or change with change=True. `path` leads from the queryset's model to
    its order ("" for orders themselves, "order" for lines, "line__order" for allocations).
    Adds no query: the orders become a subquery."""
    from orders.models import PurchaseOrder

    scope = change_scope(user) if change else view_scope(user)
    if scope is Scope.ALL:
        return queryset
    if scope is Scope.NONE:
        return queryset.none()
    if not path:
        return queryset.filter(PurchaseOrder.objects.own_q(user))
    orders = PurchaseOrder.objects.filter(PurchaseOrder.objects.own_q(user)).values("pk")
    return queryset.filter(**{f"{path}__in": orders})


def order_id_of(obj: Any, path: str) -> int | None:
    """The id of the order `obj` belongs to, along `path` as in `scoped()`."""
    if not path:
        return obj.pk
    *hops, last = path.split("__")
    for hop in hops:
        obj = getattr(obj, hop, None)
        if obj is None:
            return None
    return getattr(obj, f"{last}_id", None)


# How a price charged on an order line is recorded (orders.prices.order_line_prices_sync): the
# PriceQuote field, and the path from the order line to the value it takes.
ORDER_PRICE_KEY = {
    "vendor_id": "order__vendor_id",
    "gpu_model_id": "gpu_model_id",
    "currency": "order__currency",
    "quoted_on": "order__placed_on",
    "unit_price": "unit_price",
}


def visible_prices(queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
    """`queryset` of PriceQuote narrowed to the prices `user` may see: every market price
    (source manual or import), and a price charged on an order (source order) only when an
    order it was charged on is one the user may see. Who sees every order sees every price.
    Adds no query: the order lines become an EXISTS subquery.

    Every reader of prices starts here, so no list, figure or alert shown to a user holds
    the price of an order they may not see; one charged on no order any more (its line
    re-priced or deleted) is shown only to those who see every order."""
    from orders.models import OrderLine, PriceQuote

    scope = view_scope(user)
    if scope is Scope.ALL:
        return queryset
    market = ~Q(source=PriceQuote.Source.ORDER)
    if scope is Scope.NONE:
        return queryset.filter(market)
    charged = scoped(OrderLine.objects.all(), user, path="order").filter(
        **{path: OuterRef(name) for name, path in ORDER_PRICE_KEY.items()}
    )
    return queryset.filter(market | Exists(charged))


def order_price_notes_hidden(user: Any) -> bool:
    """Whether `user` reads the source's name ("Charged on an order") instead of the note of a
    price charged on an order. That note names the order the price was first recorded from,
    and one price can be charged on several orders (the same vendor, GPU, day and price): a
    user who sees it through their own order may not see the order it names. Those who see
    every order read the note."""
    return view_scope(user) is not Scope.ALL


def shown_price_note(user: Any) -> Any:
    """A PriceQuote's note as `user` may read it (order_price_notes_hidden), as an expression
    to annotate and search on."""
    from orders.models import PriceQuote

    if not order_price_notes_hidden(user):
        return F("note")
    return Case(
        When(source=PriceQuote.Source.ORDER, then=Value(str(PriceQuote.Source.ORDER.label))),
        default=F("note"),
        output_field=CharField(),
    )


def visible_price_alerts(queryset: QuerySet[Any], user: Any) -> QuerySet[Any]:
    """`queryset` of PriceAlert narrowed to those whose two prices (the latest and the window
    low it names) the user may see."""
    from orders.models import PriceQuote

    if view_scope(user) is Scope.ALL:
        return queryset
    prices = visible_prices(PriceQuote.objects.all(), user).values("pk")
    return queryset.filter(price__in=prices, low__in=prices)
