"""The order tally (orders.models.tallies.OrderTally), filled from every order and its open
alerts by the one definition, orders.order_tally.order_part."""

from collections import Counter, defaultdict

import django.db.models.deletion
from django.db import migrations, models

from orders.order_tally import ORDERS, order_part

CHUNK = 2000


def fill(apps, schema_editor):
    """Each order's part and their sums, CHUNK orders at a time."""
    PurchaseOrder = apps.get_model("orders", "PurchaseOrder")
    SlipAlert = apps.get_model("orders", "SlipAlert")
    OrderTallyPart = apps.get_model("orders", "OrderTallyPart")
    OrderTally = apps.get_model("orders", "OrderTally")
    tally = Counter()
    last = 0
    while True:
        orders = list(
            PurchaseOrder.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "vendor_id", "buyer_id", "status", "slip_days")[:CHUNK]
        )
        if not orders:
            break
        last = orders[-1][0]
        alerts = defaultdict(list)
        for order_id, code, severity in SlipAlert.objects.filter(
            order_id__in=[row[0] for row in orders], status="open", acknowledged_at__isnull=True
        ).values_list("order_id", "code", "severity"):
            alerts[order_id].append((code, severity))
        parts = []
        for pk, vendor_id, buyer_id, status, slip_days in orders:
            counts = order_part(
                vendor_id=vendor_id,
                buyer_id=buyer_id,
                status=status,
                slip_days=slip_days,
                alerts=alerts[pk],
            )
            tally.update(counts)
            parts.append(OrderTallyPart(order_id=pk, counts=ORDERS.rows(counts)))
        OrderTallyPart.objects.bulk_create(parts, batch_size=1000)
    OrderTally.objects.bulk_create(
        [OrderTally(**dict(zip(ORDERS.keys, key)), n=n) for key, n in sorted(tally.items())],
        batch_size=500,
    )



class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0019_vendor_score_tally'),
    ]

    operations = [
        migrations.CreateModel(
            name='OrderTallyPart',
            fields=[
                ('order', models.OneToOneField(on_delete=django.db.models.deletion.CASCADE, primary_key=True, related_name='+', serialize=False, to='orders.purchaseorder')),
                ('counts', models.JSONField(default=list)),
            ],
        ),
        migrations.CreateModel(
            name='OrderTally',
            fields=[
                ('id', models.BigAutoField(auto_created=True, primary_key=True, serialize=False, verbose_name='ID')),
                ('vendor_pk', models.IntegerField()),
                ('buyer_pk', models.IntegerField()),
                ('status', models.CharField(max_length=20)),
                ('slipping', models.BooleanField()),
                ('code', models.CharField(max_length=32)),
                ('severity', models.CharField(max_length=16)),
                ('n', models.IntegerField(default=0)),
            ],
            options={
                'constraints': [models.UniqueConstraint(fields=('vendor_pk', 'buyer_pk', 'status', 'slipping', 'code', 'severity'), name='ordertally_key')],
            },
        ),
        migrations.RunPython(fill, migrations.RunPython.noop, elidable=False),
    ]
