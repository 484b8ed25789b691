"""The vendor scorecards' tally (orders.models.tallies.VendorScoreTally), filled from every
order's stored schedule, lines, receipts and open alerts by the one definition,
orders.vendor_tally.order_score."""

from collections import defaultdict
from datetime import date

import django.db.models.deletion
from django.db import migrations, models
from django.db.models import Max, Sum

from orders.vendor_tally import COUNTS, order_score

CHUNK = 2000


def _as_date(value):
    # SQLite hands back aggregated dates as text.
    return date.fromisoformat(value) if isinstance(value, str) else value


def fill(apps, schema_editor):
    """Each order's score and their sums, CHUNK orders at a time."""
    PurchaseOrder = apps.get_model("orders", "PurchaseOrder")
    OrderLine = apps.get_model("orders", "OrderLine")
    Delivery = apps.get_model("orders", "Delivery")
    SlipAlert = apps.get_model("orders", "SlipAlert")
    OrderScore = apps.get_model("orders", "OrderScore")
    VendorScoreTally = apps.get_model("orders", "VendorScoreTally")
    tally = defaultdict(lambda: [0] * len(COUNTS))
    pks = list(PurchaseOrder.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), CHUNK):
        chunk = pks[start : start + CHUNK]
        units = dict(
            OrderLine.objects.filter(order_id__in=chunk)
            .order_by()
            .values("order_id")
            .annotate(units=Sum("quantity"))
            .values_list("order_id", "units")
        )
        received_on = dict(
            Delivery.objects.filter(order_id__in=chunk)
            .order_by()
            .values("order_id")
            .annotate(last=Max("delivered_on"))
            .values_list("order_id", "last")
        )
        alerted = set(
            SlipAlert.objects.filter(
                order_id__in=chunk, status="open", acknowledged_at__isnull=True
            ).values_list("order_id", flat=True)
        )
        rows = []
        for pk, vendor_id, status, baseline, current, slip, requotes in (
            PurchaseOrder.objects.filter(pk__in=chunk).values_list(
                "pk",
                "vendor_id",
                "status",
                "baseline_delivery_date",
                "current_delivery_date",
                "slip_days",
                "requote_count",
            )
        ):
            score = order_score(
                vendor_id=vendor_id,
                status=status,
                baseline=baseline,
                current=current,
                slip_days=slip,
                requotes=requotes,
                units=units.get(pk) or 0,
                received_on=_as_date(received_on.get(pk)),
                open_alert=pk in alerted,
            )
            row = tally[score.key]
            for i, n in enumerate(score.counts):
                row[i] += n
            vendor_pk, quoted, slip_days = score.key
            rows.append(
                OrderScore(
                    order_id=pk,
                    vendor_pk=vendor_pk,
                    quoted=quoted,
                    slip_days=slip_days,
                    **dict(zip(COUNTS, score.counts)),
                )
            )
        OrderScore.objects.bulk_create(rows, batch_size=500)
    VendorScoreTally.objects.bulk_create(
        [
            VendorScoreTally(
                vendor_pk=vendor_pk, quoted=quoted, slip_days=slip_days, **dict(zip(COUNTS, counts))
            )
            for (vendor_pk, quoted, slip_days), counts in sorted(tally.items())
        ],
        batch_size=500,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0018_lead_time_tally'),
    ]

    operations = [
        migrations.CreateModel(
            name='OrderScore',
            fields=[
                ('order', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='orders.purchaseorder')),
                ('vendor_pk', models.IntegerField()),
                ('quoted', models.BooleanField()),
                ('slip_days', models.IntegerField()),
                ('orders', models.IntegerField(default=0)),
                ('units', models.BigIntegerField(default=0)),
                ('received', models.IntegerField(default=0)),
                ('on_time', models.IntegerField(default=0)),
                ('on_time_latest', models.IntegerField(default=0)),
                ('requotes', models.IntegerField(default=0)),
                ('open_alerts', models.IntegerField(default=0)),
            ],
        ),
        migrations.CreateModel(
            name='VendorScoreTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('vendor_pk', models.IntegerField()),
                ('quoted', models.BooleanField()),
                ('slip_days', models.IntegerField()),
                ('orders', models.IntegerField(default=0)),
                ('units', models.BigIntegerField(default=0)),
                ('received', models.IntegerField(default=0)),
                ('on_time', models.IntegerField(default=0)),
                ('on_time_latest', models.IntegerField(default=0)),
                ('requotes', models.IntegerField(default=0)),
                ('open_alerts', models.IntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('vendor_pk', 'quoted', 'slip_days'), name='vendorscoretally_key')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
    ]
