"""Database triggers for the invariants a CHECK constraint cannot express (they span tables).

- a quote is not quoted, nor due, before its order was placed; its line belongs to its order;
- quotes are append-only: their order, line and dates never change;
- receipts never exceed the quantity ordered, and never predate the order;
- an order's placed_on cannot move past its quotes or receipts; a line's quantity cannot
  drop below what was received.

Validation in the models says the same thing with friendlier messages; these triggers make
sure nothing that bypasses validation (raw SQL, bulk_create, a bug) can break the rules.

SQLite drops a table's triggers when Django rebuilds the table in a migration, so any later
migration that alters these tables must call `install()` again; tests/unit/test_constraints.py
checks every trigger exists in the migrated test database.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

_TRIGGER_TABLES = {
    "orders_quote_guard": "orders_deliveryquote",
    "orders_quote_append_only": "orders_deliveryquote",
    "orders_delivery_guard": "orders_delivery",
    "orders_orderline_quantity_guard": "orders_orderline",
    "orders_po_placed_on_guard": "orders_purchaseorder",
}
# SQLite has no INSERT OR UPDATE trigger: receipts get a second one for updates.
_SQLITE_ONLY = {"orders_delivery_guard_update": "orders_delivery"}


def trigger_names(vendor: str) -> set[str]:
    return set(_TRIGGER_TABLES) | (set(_SQLITE_ONLY) if vendor == "sqlite" else set())


_POSTGRESQL = [
    r"""
    CREATE OR REPLACE FUNCTION orders_quote_guard() RETURNS trigger AS $$
    DECLARE placed date;
    BEGIN
        SELECT placed_on INTO placed FROM orders_purchaseorder WHERE id = NEW.order_id;
        IF NEW.quoted_on < placed THEN
            RAISE EXCEPTION 'delivery quote: quoted_on % is before the order was placed (%)',
                NEW.quoted_on, placed USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.delivery_date < placed THEN
            RAISE EXCEPTION 'delivery quote: delivery_date % is before the order was placed (%)',
                NEW.delivery_date, placed USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.line_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM orders_orderline WHERE id = NEW.line_id AND order_id = NEW.order_id
        ) THEN
            RAISE EXCEPTION 'delivery quote: line % does not belong to order %',
                NEW.line_id, NEW.order_id USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_quote_guard
    BEFORE INSERT ON orders_deliveryquote
    FOR EACH ROW EXECUTE FUNCTION orders_quote_guard()
    """,
    r"""
    CREATE OR REPLACE FUNCTION orders_quote_append_only() RETURNS trigger AS $$
    BEGIN
        RAISE EXCEPTION 'delivery quote %: quotes are append-only, record a new quote instead',
            OLD.id USING ERRCODE = 'check_violation';
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_quote_append_only
    BEFORE UPDATE ON orders_deliveryquote FOR EACH ROW
    WHEN (NEW.order_id IS DISTINCT FROM OLD.order_id
          OR NEW.line_id IS DISTINCT FROM OLD.line_id
          OR NEW.quoted_on IS DISTINCT FROM OLD.quoted_on
          OR NEW.delivery_date IS DISTINCT FROM OLD.delivery_date)
    EXECUTE FUNCTION orders_quote_append_only()
    """,
    r"""
    CREATE OR REPLACE FUNCTION orders_delivery_guard() RETURNS trigger AS $$
    DECLARE ordered integer; placed date; received bigint;
    BEGIN
        -- Locking the line serialises concurrent receipts, so two cannot both fit.
        SELECT l.quantity, o.placed_on INTO ordered, placed
        FROM orders_orderline l JOIN orders_purchaseorder o ON o.id = l.order_id
        WHERE l.id = NEW.line_id FOR UPDATE OF l;
        IF NOT EXISTS (
            SELECT 1 FROM orders_orderline WHERE id = NEW.line_id AND order_id = NEW.order_id
        ) THEN
            RAISE EXCEPTION 'delivery: line % does not belong to order %',
                NEW.line_id, NEW.order_id USING ERRCODE = 'check_violation';
        END IF;
        IF NEW.delivered_on < placed THEN
            RAISE EXCEPTION 'delivery: delivered_on % is before the order was placed (%)',
                NEW.delivered_on, placed USING ERRCODE = 'check_violation';
        END IF;
        SELECT COALESCE(SUM(quantity), 0) INTO received FROM orders_delivery
        WHERE line_id = NEW.line_id AND (TG_OP = 'INSERT' OR id <> OLD.id);
        IF received + NEW.quantity > ordered THEN
            RAISE EXCEPTION 'delivery: receiving % would exceed the % ordered on line % '
                '(% already received)', NEW.quantity, ordered, NEW.line_id, received
                USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_delivery_guard
    BEFORE INSERT OR UPDATE ON orders_delivery
    FOR EACH ROW EXECUTE FUNCTION orders_delivery_guard()
    """,
    r"""
    CREATE OR REPLACE FUNCTION orders_orderline_quantity_guard() RETURNS trigger AS $$
    DECLARE received bigint;
    BEGIN
        SELECT COALESCE(SUM(quantity), 0) INTO received FROM orders_delivery
        WHERE line_id = NEW.id;
        IF received > NEW.quantity THEN
            RAISE EXCEPTION 'order line %: quantity % is below the % already received',
                NEW.id, NEW.quantity, received USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_orderline_quantity_guard
    BEFORE UPDATE OF quantity ON orders_orderline
    FOR EACH ROW EXECUTE FUNCTION orders_orderline_quantity_guard()
    """,
    r"""
    CREATE OR REPLACE FUNCTION orders_po_placed_on_guard() RETURNS trigger AS $$
    BEGIN
        IF EXISTS (SELECT 1 FROM orders_deliveryquote WHERE order_id = NEW.id
                   AND (quoted_on < NEW.placed_on OR delivery_date < NEW.placed_on)) THEN
            RAISE EXCEPTION 'purchase order %: placed_on % is after one of its delivery quotes',
                NEW.po_number, NEW.placed_on USING ERRCODE = 'check_violation';
        END IF;
        IF EXISTS (SELECT 1 FROM orders_delivery d JOIN orders_orderline l ON l.id = d.line_id
                   WHERE l.order_id = NEW.id AND d.delivered_on < NEW.placed_on) THEN
            RAISE EXCEPTION 'purchase order %: placed_on % is after one of its receipts',
                NEW.po_number, NEW.placed_on USING ERRCODE = 'check_violation';
        END IF;
        RETURN NEW;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_po_placed_on_guard
    BEFORE UPDATE OF placed_on ON orders_purchaseorder
    FOR EACH ROW EXECUTE FUNCTION orders_po_placed_on_guard()
    """,
]

_SQLITE_DELIVERY_CHECKS = """
    SELECT RAISE(ABORT, 'delivery: line does not belong to the order')
    WHERE NOT EXISTS (
        SELECT 1 FROM orders_orderline WHERE id = NEW.line_id AND order_id = NEW.order_id);
    SELECT RAISE(ABORT, 'delivery: delivered_on is before the order was placed')
    WHERE NEW.delivered_on < (
        SELECT o.placed_on FROM orders_orderline l
        JOIN orders_purchaseorder o ON o.id = l.order_id WHERE l.id = NEW.line_id);
    SELECT RAISE(ABORT, 'delivery: receiving would exceed the quantity ordered on the line')
    WHERE (SELECT COALESCE(SUM(quantity), 0) FROM orders_delivery
           WHERE line_id = NEW.line_id AND id IS NOT {exclude_id})
          + NEW.quantity > (SELECT quantity FROM orders_orderline WHERE id = NEW.line_id);
"""

_SQLITE = [
    """
    CREATE TRIGGER IF NOT EXISTS orders_quote_guard BEFORE INSERT ON orders_deliveryquote
    BEGIN
        SELECT RAISE(ABORT, 'delivery quote: quoted_on is before the order was placed')
        WHERE NEW.quoted_on < (SELECT placed_on FROM orders_purchaseorder WHERE id = NEW.order_id);
        SELECT RAISE(ABORT, 'delivery quote: delivery_date is before the order was placed')
        WHERE NEW.delivery_date < (
            SELECT placed_on FROM orders_purchaseorder WHERE id = NEW.order_id);
        SELECT RAISE(ABORT, 'delivery quote: line does not belong to the order')
        WHERE NEW.line_id IS NOT NULL AND NOT EXISTS (
            SELECT 1 FROM orders_orderline WHERE id = NEW.line_id AND order_id = NEW.order_id);
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS orders_quote_append_only BEFORE UPDATE ON orders_deliveryquote
    WHEN NEW.order_id IS NOT OLD.order_id OR NEW.line_id IS NOT OLD.line_id
         OR NEW.quoted_on IS NOT OLD.quoted_on OR NEW.delivery_date IS NOT OLD.delivery_date
    BEGIN
        SELECT RAISE(ABORT, 'delivery quote: quotes are append-only, record a new quote instead');
    END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS orders_delivery_guard BEFORE INSERT ON orders_delivery
    BEGIN {_SQLITE_DELIVERY_CHECKS.format(exclude_id="NULL")} END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS orders_delivery_guard_update BEFORE UPDATE ON orders_delivery
    BEGIN {_SQLITE_DELIVERY_CHECKS.format(exclude_id="OLD.id")} END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS orders_orderline_quantity_guard
    BEFORE UPDATE OF quantity ON orders_orderline
    BEGIN
        SELECT RAISE(ABORT, 'order line: quantity is below what was already received')
        WHERE (SELECT COALESCE(SUM(quantity), 0) FROM orders_delivery WHERE line_id = NEW.id)
              > NEW.quantity;
    END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS orders_po_placed_on_guard
    BEFORE UPDATE OF placed_on ON orders_purchaseorder
    BEGIN
        SELECT RAISE(ABORT, 'purchase order: placed_on is after one of its delivery quotes')
        WHERE EXISTS (SELECT 1 FROM orders_deliveryquote WHERE order_id = NEW.id
                      AND (quoted_on < NEW.placed_on OR delivery_date < NEW.placed_on));
        SELECT RAISE(ABORT, 'purchase order: placed_on is after one of its receipts')
        WHERE EXISTS (SELECT 1 FROM orders_delivery d JOIN orders_orderline l ON l.id = d.line_id
                      WHERE l.order_id = NEW.id AND d.delivered_on < NEW.placed_on);
    END
    """,
]


def statements(vendor: str) -> list[str]:
    if vendor == "postgresql":
        return _POSTGRESQL
    if vendor == "sqlite":
        return _SQLITE
    raise NotImplementedError(f"No guard triggers written for the {vendor} database backend.")


def install(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Create (or replace) every guard trigger; safe to run again."""
    for sql in statements(schema_editor.connection.vendor):
        schema_editor.execute(sql, params=None)


def uninstall(schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for name in trigger_names(vendor):
        if vendor == "postgresql":
            table = _TRIGGER_TABLES[name]
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}", params=None)
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()", params=None)
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)


def installed(connection) -> set[str]:  # type: ignore[no-untyped-def]
    """Names of the guard triggers present in the connected database."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal")
        else:
            cursor.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")
        return {row[0] for row in cursor.fetchall()}
