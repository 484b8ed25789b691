"""The default Celery beat schedule, editable afterwards in the admin (django-celery-beat)."""

from django.conf import settings
from django.db import migrations

DAILY_SCAN = "Daily slip scan of open orders"
SWEEP = "Re-send alert emails that failed or were lost"


def create_schedule(apps, schema_editor):
    CrontabSchedule = apps.get_model("django_celery_beat", "CrontabSchedule")
    IntervalSchedule = apps.get_model("django_celery_beat", "IntervalSchedule")
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    seven_am, _ = CrontabSchedule.objects.get_or_create(
        minute="0",
        hour="7",
        day_of_week="*",
        day_of_month="*",
        month_of_year="*",
        timezone=settings.TIME_ZONE,
    )
    PeriodicTask.objects.get_or_create(
        name=DAILY_SCAN,
        defaults={"task": "orders.tasks.scan_open_orders", "crontab": seven_am},
    )
    every_ten_minutes, _ = IntervalSchedule.objects.get_or_create(every=10, period="minutes")
    PeriodicTask.objects.get_or_create(
        name=SWEEP,
        defaults={"task": "orders.tasks.sweep_outbox", "interval": every_ten_minutes},
    )


def remove_schedule(apps, schema_editor):
    PeriodicTask = apps.get_model("django_celery_beat", "PeriodicTask")
    PeriodicTask.objects.filter(name__in=[DAILY_SCAN, SWEEP]).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0003_slip_alerts"),
        ("django_celery_beat", "0019_alter_periodictasks_options"),
    ]

    operations = [migrations.RunPython(create_schedule, remove_schedule)]
