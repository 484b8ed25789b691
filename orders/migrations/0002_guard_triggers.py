from django.db import migrations

from orders import db_triggers


def install(apps, schema_editor):
    db_triggers.install(schema_editor)


def uninstall(apps, schema_editor):
    db_triggers.uninstall(schema_editor)


class Migration(migrations.Migration):
    dependencies = [("orders", "0001_initial")]

    operations = [migrations.RunPython(install, uninstall, elidable=False)]
