"""Slip alerts get a status (open / superseded / resolved) and at most one open alert per
(order, rule): of existing alerts, the newest per (order, rule) stays open and the older ones
become superseded, before the partial unique index is built."""

from django.conf import settings
from django.db import migrations, models
from django.db.models import Exists, OuterRef, Q
from django.db.models.functions import Now

SUPERSEDED_REASON = "superseded by a newer alert for the same rule"


def supersede_older_open_alerts(apps, schema_editor) -> None:
    """One UPDATE: an open alert with a newer one (by detected_at, then id) for the same
    order and rule becomes superseded."""
    SlipAlert = apps.get_model("orders", "SlipAlert")
    newer = SlipAlert.objects.filter(
        order_id=OuterRef("order_id"), code=OuterRef("code"), status="open"
    ).filter(
        Q(detected_at__gt=OuterRef("detected_at"))
        | Q(detected_at=OuterRef("detected_at"), pk__gt=OuterRef("pk"))
    )
    SlipAlert.objects.filter(Exists(newer), status="open").update(
        status="superseded", closed_at=Now(), closed_reason=SUPERSEDED_REASON
    )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0012_single_line_text_po_number_unique_ci"),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.AddField(
            model_name="slipalert",
            name="closed_at",
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name="slipalert",
            name="closed_reason",
            field=models.CharField(blank=True, db_default="", default="", max_length=200),
        ),
        migrations.AddField(
            model_name="slipalert",
            name="status",
            field=models.CharField(
                choices=[
                    ("open", "Open"),
                    ("superseded", "Superseded"),
                    ("resolved", "Resolved"),
                ],
                db_default="open",
                default="open",
                max_length=12,
            ),
        ),
        migrations.RunPython(supersede_older_open_alerts, migrations.RunPython.noop),
        migrations.AddConstraint(
            model_name="slipalert",
            constraint=models.UniqueConstraint(
                condition=models.Q(("status", "open")),
                fields=("order", "code"),
                name="slipalert_one_open_per_order_code",
            ),
        ),
        migrations.AddConstraint(
            model_name="slipalert",
            constraint=models.CheckConstraint(
                condition=models.Q(("status__in", ["open", "superseded", "resolved"])),
                name="slipalert_status_valid",
            ),
        ),
        migrations.AddConstraint(
            model_name="slipalert",
            constraint=models.CheckConstraint(
                condition=models.Q(
                    models.Q(("closed_at__isnull", True), ("status", "open")),
                    models.Q(
                        models.Q(("status", "open"), _negated=True),
                        ("closed_at__isnull", False),
                    ),
                    _connector="OR",
                ),
                name="slipalert_closed_has_time",
            ),
        ),
    ]
