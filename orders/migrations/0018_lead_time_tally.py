"""The lead-time tally (orders.models.tallies), filled from every order's quotes by the one
definition, orders.slips.lead_time_counts."""

from collections import Counter, defaultdict

import django.db.models.deletion
from django.db import migrations, models

from orders.slips import Quote, lead_time_counts

CHUNK = 2000


def fill(apps, schema_editor):
    """Each order's counts and their sum, CHUNK orders at a time."""
    PurchaseOrder = apps.get_model("orders", "PurchaseOrder")
    OrderLine = apps.get_model("orders", "OrderLine")
    DeliveryQuote = apps.get_model("orders", "DeliveryQuote")
    OrderLeadTimes = apps.get_model("orders", "OrderLeadTimes")
    LeadTimeTally = apps.get_model("orders", "LeadTimeTally")
    tally = Counter()
    pks = list(PurchaseOrder.objects.order_by("pk").values_list("pk", flat=True))
    for start in range(0, len(pks), CHUNK):
        chunk = pks[start : start + CHUNK]
        facts = PurchaseOrder.objects.filter(pk__in=chunk).values_list(
            "pk", "placed_on", "vendor_id"
        )
        lines = defaultdict(dict)
        for order_id, pk, gpu_model_id in OrderLine.objects.filter(
            order_id__in=chunk
        ).values_list("order_id", "pk", "gpu_model_id"):
            lines[order_id][pk] = gpu_model_id
        quotes = defaultdict(list)
        for pk, order_id, line_id, quoted_on, delivery_date in DeliveryQuote.objects.filter(
            order_id__in=chunk
        ).values_list("pk", "order_id", "line_id", "quoted_on", "delivery_date"):
            quotes[order_id].append(Quote(pk, quoted_on, delivery_date, line_id))
        rows = []
        for order_id, placed_on, vendor_id in facts:
            counts = lead_time_counts(placed_on, vendor_id, quotes[order_id], lines[order_id])
            tally.update(counts)
            rows.append(
                OrderLeadTimes(
                    order_id=order_id,
                    counts=[
                        [m.isoformat(), v, g, lead, n]
                        for (m, v, g, lead), n in sorted(counts.items())
                    ],
                )
            )
        OrderLeadTimes.objects.bulk_create(rows, batch_size=500)
    LeadTimeTally.objects.bulk_create(
        [
            LeadTimeTally(month=m, vendor_pk=v, gpu_model_pk=g, lead_days=lead, quotes=n)
            for (m, v, g, lead), n in sorted(tally.items())
        ],
        batch_size=500,
    )


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0017_open_alert_index'),
    ]

    operations = [
        migrations.CreateModel(
            name='OrderLeadTimes',
            fields=[
                ('order', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='orders.purchaseorder')),
                ('counts', models.JSONField(default=list)),
            ],
        ),
        migrations.CreateModel(
            name='LeadTimeTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('month', models.DateField()),
                ('vendor_pk', models.IntegerField()),
                ('gpu_model_pk', models.IntegerField()),
                ('lead_days', models.IntegerField()),
                ('quotes', models.IntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('gpu_model_pk', 'month', 'vendor_pk', 'lead_days'), name='leadtimetally_key')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
    ]
