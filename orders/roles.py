"""The three roles, each a group of model permissions, and the service that gives a user one.

Which orders a permission reaches is decided in orders/permissions.py; a role only bundles
permissions. The groups are created by migration 0008 (which keeps its own frozen copy of
ROLE_PERMISSIONS, as migrations should); `role_grant` creates a missing group from this
definition, so it also works after a test database flush or a deleted group.
tests/unit/test_roles.py checks the migration and this definition agree.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group, Permission
from django.db import transaction
from django.db.models import Q


class Role(enum.StrEnum):
    BUYER = "buyer"
    PROCUREMENT_MANAGER = "procurement-manager"
    VIEWER = "viewer"

    @property
    def group_name(self) -> str:
        return GROUP_NAMES[self]


GROUP_NAMES = {
    Role.BUYER: "Buyer",
    Role.PROCUREMENT_MANAGER: "Procurement manager",
    Role.VIEWER: "Viewer",
}

_ORDERS_MODELS = (
    "vendor",
    "gpumodel",
    "purchaseorder",
    "orderline",
    "deliveryquote",
    "delivery",
    "slipalert",
    "alertnotice",
    "outboxemail",
    "scanrun",
    "pricequote",
    "exchangerate",
    "pricealert",
    "team",
    "quota",
    "allocation",
    "teamslipnotice",
)


def _all(*actions: str) -> list[str]:
    return [f"orders.{action}_{model}" for model in _ORDERS_MODELS for action in actions]


ROLE_PERMISSIONS: dict[Role, list[str]] = {
    # Their own and watched orders: add and edit them, their lines, quotes and receipts.
    # Which orders these reach is orders.permissions' business (own + watched only).
    Role.BUYER: [
        "orders.view_vendor",
        "orders.add_vendor",
        "orders.view_gpumodel",
        "orders.view_purchaseorder",
        "orders.add_purchaseorder",
        "orders.change_purchaseorder",
        "orders.view_orderline",
        "orders.add_orderline",
        "orders.change_orderline",
        "orders.delete_orderline",
        "orders.view_deliveryquote",
        "orders.add_deliveryquote",
        "orders.view_delivery",
        "orders.add_delivery",
        "orders.delete_delivery",
        "orders.view_slipalert",
        "orders.view_pricequote",
        "orders.add_pricequote",
        "orders.view_exchangerate",
        "orders.view_pricealert",
        "orders.view_team",
        "orders.view_quota",
        "orders.view_allocation",
    ],
    # Everything in procurement: every order, quotas and allocations, acknowledging alerts.
    Role.PROCUREMENT_MANAGER: [
        *_all("view", "add", "change", "delete"),
        "orders.view_all_purchaseorders",
        "orders.change_all_purchaseorders",
    ],
    # Read-only, everything; exports need only view permissions.
    Role.VIEWER: [*_all("view"), "orders.view_all_purchaseorders"],
}


def _permissions(names: list[str]) -> list[Permission]:
    query = Q(pk__in=[])
    for name in names:
        app_label, codename = name.split(".")
        query |= Q(content_type__app_label=app_label, codename=codename)
    found = list(Permission.objects.filter(query))
    if len(found) != len(names):
        have = {f"{p.content_type.app_label}.{p.codename}" for p in found}
        raise LookupError(f"Permissions missing (run migrate): {sorted(set(names) - have)}")
    return found


def role_group(role: Role) -> Group:
    """The role's group; created with the role's permissions when missing."""
    group, created = Group.objects.get_or_create(name=role.group_name)
    if created:
        group.permissions.set(_permissions(ROLE_PERMISSIONS[role]))
    return group


def role_of(user: Any) -> Role | None:
    """The user's role (the first if several were given by hand), or None."""
    names = set(user.groups.values_list("name", flat=True))
    return next((role for role in Role if role.group_name in names), None)


@transaction.atomic
def role_grant(*, user: Any, role: Role | None) -> None:
    """Make `role` the user's one role (None: no role). Other groups are left alone. A role
    works in the admin, so it makes the user staff; taking roles away leaves `is_staff` and
    `is_active` as they are (deactivate the account to lock someone out)."""
    roles = Group.objects.filter(name__in=GROUP_NAMES.values())
    if role is not None:
        roles = roles.exclude(name=role.group_name)
    user.groups.remove(*roles)
    if role is not None:
        user.groups.add(role_group(role))
        if not user.is_staff:
            user.is_staff = True
            user.save(update_fields=["is_staff"])
    # Django caches permissions on the user object.
    for cache in ("_perm_cache", "_user_perm_cache", "_group_perm_cache", "_order_access_cache"):
        user.__dict__.pop(cache, None)


@transaction.atomic
def role_grant_new(*, users: Sequence[Any], role: Role, batch_size: int = 2000) -> None:
    """`role_grant` for many saved accounts that hold no role yet (just created, as by an
    import): the same group and the same staff flag, in a fixed number of queries whatever
    their number (the group, one insert per batch, and one update if any was not staff)."""
    if not users:
        return
    group = role_group(role)
    memberships = get_user_model().groups.through
    memberships.objects.bulk_create(
        [memberships(user_id=user.pk, group_id=group.pk) for user in users],
        batch_size=batch_size,
        ignore_conflicts=True,
    )
    not_staff = [user.pk for user in users if not user.is_staff]
    if not_staff:
        get_user_model().objects.filter(pk__in=not_staff).update(is_staff=True)
        for user in users:
            user.is_staff = True
