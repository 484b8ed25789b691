"""The schedule stored on orders and lines (orders.models.procurement.StoredSchedule), filled
from each order's quote history by the one definition, orders.slips.order_figures.

On SQLite, adding a column with a default rebuilds the table, which drops its triggers: the
guard triggers are taken away first and installed again at the end, as in 0012.
"""

from collections import defaultdict

import django.db.models.deletion
from django.conf import settings
from django.db import migrations, models

from orders import db_triggers
from orders.slips import FIGURES, Quote, order_figures

CHUNK = 2000


def install_triggers(apps, schema_editor):
    db_triggers.install(schema_editor)


def uninstall_triggers(apps, schema_editor):
    db_triggers.uninstall(schema_editor)


def fill(apps, schema_editor):
    """Every order's and line's schedule from its history, CHUNK orders at a time."""
    PurchaseOrder = apps.get_model("orders", "PurchaseOrder")
    OrderLine = apps.get_model("orders", "OrderLine")
    DeliveryQuote = apps.get_model("orders", "DeliveryQuote")
    pks = list(PurchaseOrder.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), CHUNK):
        chunk = pks[start : start + CHUNK]
        placed = dict(PurchaseOrder.objects.filter(pk__in=chunk).values_list("pk", "placed_on"))
        lines = defaultdict(list)
        for order_id, pk in OrderLine.objects.filter(order_id__in=chunk).values_list(
            "order_id", "pk"
        ):
            lines[order_id].append(pk)
        quotes = defaultdict(list)
        for pk, order_id, line_id, quoted_on, delivery_date in DeliveryQuote.objects.filter(
            order_id__in=chunk
        ).values_list("pk", "order_id", "line_id", "quoted_on", "delivery_date"):
            quotes[order_id].append(Quote(pk, quoted_on, delivery_date, line_id))
        order_rows, line_rows = [], []
        for order_id, placed_on in placed.items():
            plan = order_figures(placed_on, quotes[order_id], lines[order_id])
            if plan.current_quote_id is None:
                continue  # never quoted: the defaults are its schedule
            order = PurchaseOrder(pk=order_id, current_quote_id=plan.current_quote_id)
            for name in FIGURES:
                setattr(order, name, getattr(plan.order, name))
            order_rows.append(order)
            for line_id, figures in plan.lines.items():
                line = OrderLine(pk=line_id)
                for name in FIGURES:
                    setattr(line, name, getattr(figures, name))
                line_rows.append(line)
        PurchaseOrder.objects.bulk_update(order_rows, [*FIGURES, "current_quote"], batch_size=500)
        OrderLine.objects.bulk_update(line_rows, list(FIGURES), batch_size=500)


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0013_slipalert_status"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(uninstall_triggers, install_triggers, elidable=False),
        migrations.AddField(
            model_name="orderline",
            name="baseline_delivery_date",
            field=models.DateField(editable=False, null=True, verbose_name="first quoted date"),
        ),
        migrations.AddField(
            model_name="orderline",
            name="baseline_lead_days",
            field=models.IntegerField(
                editable=False, null=True, verbose_name="first lead time (days)"
            ),
        ),
        migrations.AddField(
            model_name="orderline",
            name="current_delivery_date",
            field=models.DateField(editable=False, null=True, verbose_name="current date"),
        ),
        migrations.AddField(
            model_name="orderline",
            name="current_lead_days",
            field=models.IntegerField(editable=False, null=True, verbose_name="lead time (days)"),
        ),
        migrations.AddField(
            model_name="orderline",
            name="requote_count",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="re-quotes"),
        ),
        migrations.AddField(
            model_name="orderline",
            name="slip_days",
            field=models.IntegerField(editable=False, null=True, verbose_name="slip (days)"),
        ),
        migrations.AddField(
            model_name="purchaseorder",
            name="baseline_delivery_date",
            field=models.DateField(editable=False, null=True, verbose_name="first quoted date"),
        ),
        migrations.AddField(
            model_name="purchaseorder",
            name="baseline_lead_days",
            field=models.IntegerField(
                editable=False, null=True, verbose_name="first lead time (days)"
            ),
        ),
        migrations.AddField(
            model_name="purchaseorder",
            name="current_delivery_date",
            field=models.DateField(editable=False, null=True, verbose_name="current date"),
        ),
        migrations.AddField(
            model_name="purchaseorder",
            name="current_lead_days",
            field=models.IntegerField(editable=False, null=True, verbose_name="lead time (days)"),
        ),
        migrations.AddField(
            model_name="purchaseorder",
            name="current_quote",
            field=models.ForeignKey(
                db_constraint=False,
                editable=False,
                null=True,
                on_delete=django.db.models.deletion.DO_NOTHING,
                related_name="+",
                to="orders.deliveryquote",
            ),
        ),
        migrations.AddField(
            model_name="purchaseorder",
            name="requote_count",
            field=models.PositiveIntegerField(default=0, editable=False, verbose_name="re-quotes"),
        ),
        migrations.AddField(
            model_name="purchaseorder",
            name="slip_days",
            field=models.IntegerField(editable=False, null=True, verbose_name="slip (days)"),
        ),
        migrations.AddIndex(
            model_name="purchaseorder",
            index=models.Index(fields=["-placed_on", "-id"], name="po_placed_on_id_desc"),
        ),
        migrations.AddIndex(
            model_name="purchaseorder",
            index=models.Index(fields=["current_delivery_date", "id"], name="po_current_date"),
        ),
        migrations.AddIndex(
            model_name="purchaseorder",
            index=models.Index(fields=["baseline_delivery_date", "id"], name="po_baseline_date"),
        ),
        migrations.AddIndex(
            model_name="purchaseorder",
            index=models.Index(fields=["slip_days", "id"], name="po_slip_days"),
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
        migrations.RunPython(install_triggers, uninstall_triggers, elidable=False),
    ]
