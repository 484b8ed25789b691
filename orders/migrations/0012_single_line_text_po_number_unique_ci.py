"""Short text fields refuse control characters (validators and CHECK constraints; 0011
cleaned the rows that held some), PO numbers are unique whatever their case, and an alert
email that cannot be sent at all can be marked undeliverable.

On SQLite, adding a constraint rebuilds the table, which drops its triggers and fails on the
triggers of other tables that name it: the guard triggers are taken away first and installed
again at the end (on PostgreSQL they come back unchanged)."""

import django.db.models.functions.text
import orders.text
from django.conf import settings
from django.db import migrations, models

from orders import db_triggers


def install_triggers(apps, schema_editor):
    db_triggers.install(schema_editor)


def uninstall_triggers(apps, schema_editor):
    db_triggers.uninstall(schema_editor)


class Migration(migrations.Migration):

    dependencies = [
        ('orders', '0011_clean_control_characters'),
        migrations.swappable_dependency(settings.AUTH_USER_MODEL),
    ]

    operations = [
        migrations.RunPython(uninstall_triggers, install_triggers, elidable=False),
        migrations.AlterField(
            model_name='delivery',
            name='note',
            field=models.CharField(blank=True, max_length=500, validators=[orders.text.SingleLineValidator('Receipt note')]),
        ),
        migrations.AlterField(
            model_name='deliveryquote',
            name='note',
            field=models.CharField(blank=True, max_length=500, validators=[orders.text.SingleLineValidator('Quote note')]),
        ),
        migrations.AlterField(
            model_name='deliveryquote',
            name='source',
            field=models.CharField(blank=True, help_text='Where it came from: "email", "portal", a file...', max_length=100, validators=[orders.text.SingleLineValidator('Quote source')]),
        ),
        migrations.AlterField(
            model_name='gpumodel',
            name='family',
            field=models.CharField(blank=True, help_text='e.g. "Ampere", "Hopper"', max_length=50, validators=[orders.text.SingleLineValidator('GPU family')]),
        ),
        migrations.AlterField(
            model_name='gpumodel',
            name='name',
            field=models.CharField(help_text='e.g. "A100 80GB SXM", "H100 SXM"', max_length=100, validators=[orders.text.SingleLineValidator('GPU model name')]),
        ),
        migrations.AlterField(
            model_name='historicaldelivery',
            name='note',
            field=models.CharField(blank=True, max_length=500, validators=[orders.text.SingleLineValidator('Receipt note')]),
        ),
        migrations.AlterField(
            model_name='historicaldeliveryquote',
            name='note',
            field=models.CharField(blank=True, max_length=500, validators=[orders.text.SingleLineValidator('Quote note')]),
        ),
        migrations.AlterField(
            model_name='historicaldeliveryquote',
            name='source',
            field=models.CharField(blank=True, help_text='Where it came from: "email", "portal", a file...', max_length=100, validators=[orders.text.SingleLineValidator('Quote source')]),
        ),
        migrations.AlterField(
            model_name='historicalpricequote',
            name='note',
            field=models.CharField(blank=True, max_length=200, validators=[orders.text.SingleLineValidator('Price note')]),
        ),
        migrations.AlterField(
            model_name='historicalpurchaseorder',
            name='po_number',
            field=models.CharField(max_length=64, validators=[orders.text.SingleLineValidator('PO number')], verbose_name='PO number'),
        ),
        migrations.AlterField(
            model_name='pricequote',
            name='note',
            field=models.CharField(blank=True, max_length=200, validators=[orders.text.SingleLineValidator('Price note')]),
        ),
        migrations.AlterField(
            model_name='purchaseorder',
            name='po_number',
            field=models.CharField(db_index=True, max_length=64, validators=[orders.text.SingleLineValidator('PO number')], verbose_name='PO number'),
        ),
        migrations.AlterField(
            model_name='team',
            name='name',
            field=models.CharField(max_length=200, validators=[orders.text.SingleLineValidator('Team name')]),
        ),
        migrations.AlterField(
            model_name='vendor',
            name='name',
            field=models.CharField(max_length=200, validators=[orders.text.SingleLineValidator('Vendor name')]),
        ),
        migrations.AddConstraint(
            model_name='delivery',
            constraint=models.CheckConstraint(condition=models.Q(('note__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='delivery_note_single_line', violation_error_message='note must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='deliveryquote',
            constraint=models.CheckConstraint(condition=models.Q(('note__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='quote_note_single_line', violation_error_message='note must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='deliveryquote',
            constraint=models.CheckConstraint(condition=models.Q(('source__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='quote_source_single_line', violation_error_message='source must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='gpumodel',
            constraint=models.CheckConstraint(condition=models.Q(('name__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='gpumodel_name_single_line', violation_error_message='name must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='gpumodel',
            constraint=models.CheckConstraint(condition=models.Q(('family__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='gpumodel_family_single_line', violation_error_message='family must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='pricequote',
            constraint=models.CheckConstraint(condition=models.Q(('note__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='pricequote_note_single_line', violation_error_message='note must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='purchaseorder',
            constraint=models.UniqueConstraint(django.db.models.functions.text.Lower('po_number'), name='po_number_unique_ci', violation_error_code='po_number_taken', violation_error_message='A purchase order with this PO number already exists.'),
        ),
        migrations.AddConstraint(
            model_name='purchaseorder',
            constraint=models.CheckConstraint(condition=models.Q(('po_number__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='po_number_single_line', violation_error_message='po_number must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='team',
            constraint=models.CheckConstraint(condition=models.Q(('name__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='team_name_single_line', violation_error_message='name must be one line of plain text, without control characters.'),
        ),
        migrations.AddConstraint(
            model_name='vendor',
            constraint=models.CheckConstraint(condition=models.Q(('name__regex', '[\\x00-\\x1f\\x7f-\\x9f]'), _negated=True), name='vendor_name_single_line', violation_error_message='name must be one line of plain text, without control characters.'),
        ),
        migrations.AlterField(
            model_name='outboxemail',
            name='status',
            field=models.CharField(choices=[('ready', 'Ready'), ('sending', 'Sending'), ('sent', 'Sent'), ('failed', 'Failed (will retry)'), ('undeliverable', 'Undeliverable (not retried)')], default='ready', max_length=13),
        ),
        migrations.RunPython(install_triggers, uninstall_triggers, elidable=False),
    ]
