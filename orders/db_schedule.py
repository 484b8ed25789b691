"""Database triggers that keep orders_lineschedule (LineSchedule) in step with the quotes.

Whatever adds or removes quotes or lines (the admin, an import's COPY, raw SQL), the affected
orders' line schedules are worked out again from their quotes, set-based: one statement per
statement on PostgreSQL (statement-level triggers with transition tables, so a COPY of
300,000 quotes costs one pass, not 300,000), per row on SQLite (which has nothing else).

The rule is the one in orders.slips.line_schedule: the quotes that apply to a line are the
order-level ones plus its own; ordered by (quoted_on, id) the first is the baseline and the
last the current quote. tests/unit/test_line_schedule.py checks the two agree.

Concurrency (PostgreSQL): two transactions adding quotes to one order would each work the
schedule out from a snapshot missing the other's quote. So the refresh first locks the
orders' rows; under READ COMMITTED every later statement of the function takes a fresh
snapshot, which then holds the other transaction's committed quotes.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

_COLUMNS = (
    "line_id, order_id, baseline_quote_id, baseline_quoted_on, baseline_delivery_date, "
    "current_quote_id, current_quoted_on, current_delivery_date, quote_count"
)


def _schedules_of(orders: str) -> str:
    """SELECT of the schedule rows of the lines whose order_id satisfies `orders`."""
    return f"""
    SELECT line_id, order_id, baseline_quote_id, baseline_quoted_on, baseline_delivery_date,
           current_quote_id, current_quoted_on, current_delivery_date, quote_count
    FROM (
        SELECT l.id AS line_id, l.order_id,
               first_value(q.id) OVER w AS baseline_quote_id,
               first_value(q.quoted_on) OVER w AS baseline_quoted_on,
               first_value(q.delivery_date) OVER w AS baseline_delivery_date,
               last_value(q.id) OVER w AS current_quote_id,
               last_value(q.quoted_on) OVER w AS current_quoted_on,
               last_value(q.delivery_date) OVER w AS current_delivery_date,
               count(*) OVER w AS quote_count,
               row_number() OVER w AS n
        FROM orders_orderline l
        JOIN orders_deliveryquote q
          ON q.order_id = l.order_id AND (q.line_id IS NULL OR q.line_id = l.id)
        WHERE l.order_id {orders}
        WINDOW w AS (PARTITION BY l.id ORDER BY q.quoted_on, q.id
                     ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING)
    ) applicable
    WHERE n = 1
    """


_POSTGRESQL = [
    rf"""
    CREATE OR REPLACE FUNCTION orders_line_schedule_refresh(order_ids bigint[])
    RETURNS void AS $$
    BEGIN
        PERFORM 1 FROM orders_purchaseorder WHERE id = ANY(order_ids)
        ORDER BY id FOR NO KEY UPDATE;
        DELETE FROM orders_lineschedule WHERE order_id = ANY(order_ids);
        INSERT INTO orders_lineschedule ({_COLUMNS})
        {_schedules_of("= ANY(order_ids)")};
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE FUNCTION orders_line_schedule_quotes_added() RETURNS trigger AS $$
    BEGIN
        PERFORM orders_line_schedule_refresh(ARRAY(SELECT DISTINCT order_id FROM new_quotes));
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_line_schedule_quotes_added
    AFTER INSERT ON orders_deliveryquote REFERENCING NEW TABLE AS new_quotes
    FOR EACH STATEMENT EXECUTE FUNCTION orders_line_schedule_quotes_added()
    """,
    """
    CREATE OR REPLACE FUNCTION orders_line_schedule_quotes_removed() RETURNS trigger AS $$
    BEGIN
        PERFORM orders_line_schedule_refresh(ARRAY(SELECT DISTINCT order_id FROM old_quotes));
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_line_schedule_quotes_removed
    AFTER DELETE ON orders_deliveryquote REFERENCING OLD TABLE AS old_quotes
    FOR EACH STATEMENT EXECUTE FUNCTION orders_line_schedule_quotes_removed()
    """,
    """
    CREATE OR REPLACE FUNCTION orders_line_schedule_lines_added() RETURNS trigger AS $$
    BEGIN
        PERFORM orders_line_schedule_refresh(ARRAY(SELECT DISTINCT order_id FROM new_lines));
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_line_schedule_lines_added
    AFTER INSERT ON orders_orderline REFERENCING NEW TABLE AS new_lines
    FOR EACH STATEMENT EXECUTE FUNCTION orders_line_schedule_lines_added()
    """,
    """
    CREATE OR REPLACE FUNCTION orders_line_schedule_lines_removed() RETURNS trigger AS $$
    BEGIN
        DELETE FROM orders_lineschedule WHERE line_id IN (SELECT id FROM old_lines);
        RETURN NULL;
    END $$ LANGUAGE plpgsql
    """,
    """
    CREATE OR REPLACE TRIGGER orders_line_schedule_lines_removed
    AFTER DELETE ON orders_orderline REFERENCING OLD TABLE AS old_lines
    FOR EACH STATEMENT EXECUTE FUNCTION orders_line_schedule_lines_removed()
    """,
]


def _sqlite_refresh(order: str) -> str:
    return f"""
        DELETE FROM orders_lineschedule WHERE order_id = {order};
        INSERT INTO orders_lineschedule ({_COLUMNS}) {_schedules_of("= " + order)};
    """


_SQLITE = [
    f"""
    CREATE TRIGGER IF NOT EXISTS orders_line_schedule_quotes_added
    AFTER INSERT ON orders_deliveryquote
    BEGIN {_sqlite_refresh("NEW.order_id")} END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS orders_line_schedule_quotes_removed
    AFTER DELETE ON orders_deliveryquote
    BEGIN {_sqlite_refresh("OLD.order_id")} END
    """,
    f"""
    CREATE TRIGGER IF NOT EXISTS orders_line_schedule_lines_added
    AFTER INSERT ON orders_orderline
    BEGIN {_sqlite_refresh("NEW.order_id")} END
    """,
    """
    CREATE TRIGGER IF NOT EXISTS orders_line_schedule_lines_removed
    AFTER DELETE ON orders_orderline
    BEGIN DELETE FROM orders_lineschedule WHERE line_id = OLD.id; END
    """,
]

_TRIGGER_TABLES = {
    "orders_line_schedule_quotes_added": "orders_deliveryquote",
    "orders_line_schedule_quotes_removed": "orders_deliveryquote",
    "orders_line_schedule_lines_added": "orders_orderline",
    "orders_line_schedule_lines_removed": "orders_orderline",
}


def trigger_names() -> set[str]:
    return set(_TRIGGER_TABLES)


def install(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Create (or replace) the triggers; safe to run again."""
    vendor = schema_editor.connection.vendor
    if vendor not in ("postgresql", "sqlite"):
        raise NotImplementedError(f"No line schedule triggers for the {vendor} backend.")
    for sql in _POSTGRESQL if vendor == "postgresql" else _SQLITE:
        schema_editor.execute(sql, params=None)


def uninstall(schema_editor: BaseDatabaseSchemaEditor) -> None:
    vendor = schema_editor.connection.vendor
    for name, table in _TRIGGER_TABLES.items():
        if vendor == "postgresql":
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}", params=None)
            schema_editor.execute(f"DROP FUNCTION IF EXISTS {name}()", params=None)
        else:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {name}", params=None)
    if vendor == "postgresql":
        schema_editor.execute(
            "DROP FUNCTION IF EXISTS orders_line_schedule_refresh(bigint[])", params=None
        )


def rebuild(connection: BaseDatabaseWrapper) -> None:
    """Work every line schedule out again from the quotes (the migration's backfill, and a
    repair tool should the table ever be doubted)."""
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM orders_lineschedule")
        cursor.execute(
            f"INSERT INTO orders_lineschedule ({_COLUMNS}) "
            + _schedules_of("IN (SELECT id FROM orders_purchaseorder)")
        )
