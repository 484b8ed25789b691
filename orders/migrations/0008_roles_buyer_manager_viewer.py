"""The roles: groups Buyer, Procurement manager and Viewer with their model permissions, and
two permissions that widen view/change from a buyer's own and watched orders to every order.

Idempotent (groups by name, permissions added, never removed), and it works on a fresh
database, where Django creates permissions only after the whole migrate run: the permissions
of this app are created here first. Existing buyers and watchers become Buyers, so that
nobody who was emailed about an order before the roles existed stops being emailed.

The role definitions are a frozen copy of orders/roles.py's ROLE_PERMISSIONS as of this
migration (tests/unit/test_roles.py checks they agree); a later change to a role needs a
migration of its own. No table is altered (AlterModelOptions is state only), so the SQLite
triggers of orders/db_triggers.py stay in place.
"""

from django.conf import settings
from django.contrib.auth.management import create_permissions
from django.db import migrations
from django.db.models import Q

MODELS = (
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
WIDEN = ["view_all_purchaseorders", "change_all_purchaseorders"]
ROLES = {
    "Buyer": [
        "view_vendor",
        "add_vendor",
        "view_gpumodel",
        "view_purchaseorder",
        "add_purchaseorder",
        "change_purchaseorder",
        "view_orderline",
        "add_orderline",
        "change_orderline",
        "delete_orderline",
        "view_deliveryquote",
        "add_deliveryquote",
        "view_delivery",
        "add_delivery",
        "delete_delivery",
        "view_slipalert",
        "view_pricequote",
        "add_pricequote",
        "view_exchangerate",
        "view_pricealert",
        "view_team",
        "view_quota",
        "view_allocation",
    ],
    "Procurement manager": [
        *(f"{action}_{model}" for model in MODELS for action in ("view", "add", "change", "delete")),
        *WIDEN,
    ],
    "Viewer": [*(f"view_{model}" for model in MODELS), "view_all_purchaseorders"],
}


def create_roles(apps, schema_editor):
    db = schema_editor.connection.alias
    # On a fresh database the post_migrate signal that creates permissions has not run yet.
    orders_config = apps.get_app_config("orders")
    orders_config.models_module = True  # the state app config has none; create_permissions skips it then
    try:
        create_permissions(orders_config, verbosity=0, using=db, apps=apps)
    finally:
        orders_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    permissions = {
        p.codename: p
        for p in Permission.objects.using(db).filter(content_type__app_label="orders")
    }
    for name, codenames in ROLES.items():
        group, _ = Group.objects.using(db).get_or_create(name=name)
        missing = sorted(set(codenames) - set(permissions))
        if missing:
            raise LookupError(f"Permissions missing for {name}: {missing}")
        group.permissions.add(*(permissions[c] for c in codenames))

    # Buyers and watchers of existing orders keep seeing them and being emailed about them.
    User = apps.get_model(settings.AUTH_USER_MODEL)
    PurchaseOrder = apps.get_model("orders", "PurchaseOrder")
    buyer_group = Group.objects.using(db).get(name="Buyer")
    orders = PurchaseOrder.objects.using(db)
    involved = User.objects.using(db).filter(
        Q(pk__in=orders.values("buyer_id"))
        | Q(pk__in=PurchaseOrder.watchers.through.objects.using(db).values("user_id")),
        is_superuser=False,
    )
    without_role = involved.exclude(groups__name__in=list(ROLES))
    buyer_group.user_set.add(*without_role.distinct())


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0007_teams_quotas_allocations"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AlterModelOptions(
            name="purchaseorder",
            options={
                "ordering": ["-placed_on", "-id"],
                "permissions": [
                    ("view_all_purchaseorders", "Can view every purchase order"),
                    ("change_all_purchaseorders", "Can change every purchase order"),
                ],
                "verbose_name": "purchase order",
            },
        ),
        # Reversing leaves the groups (they may have members by then); applying again is
        # harmless.
        migrations.RunPython(create_roles, migrations.RunPython.noop),
    ]
