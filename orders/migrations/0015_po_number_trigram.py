"""A trigram index on the PO number (PostgreSQL only), for the order search's "contains"."""

from django.db import migrations
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from django.db.migrations.state import StateApps

# The admin's search is `po_number__icontains`: PostgreSQL compares UPPER(po_number), so the
# index is on that expression. pg_trgm is a trusted extension: the database owner may add it.
CREATE = [
    "CREATE EXTENSION IF NOT EXISTS pg_trgm",
    "CREATE INDEX IF NOT EXISTS po_number_upper_trgm ON orders_purchaseorder "
    "USING gin (UPPER(po_number) gin_trgm_ops)",
]
DROP = ["DROP INDEX IF EXISTS po_number_upper_trgm"]


def _run(statements: list[str]):  # type: ignore[no-untyped-def]
    def run(apps: StateApps, schema_editor: BaseDatabaseSchemaEditor) -> None:
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement, params=None)

    return run


class Migration(migrations.Migration):
    dependencies = [("orders", "0014_stored_schedule")]

    operations = [migrations.RunPython(_run(CREATE), _run(DROP), elidable=False)]
