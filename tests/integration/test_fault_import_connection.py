"""The database connection of a running `manage.py import_orders` is killed
(pg_terminate_backend) in the middle of its writes: the command fails with a clear message and
no traceback, nothing of the file is in the database, no slip check was queued, and running the
same command again imports the whole file once.

The import is caught mid-write by a real lock, not by timing: another transaction holds,
uncommitted, an order with a PO number from the middle of the file, so the import's COPY of
orders waits on the unique index after writing the vendors, buyers, GPU model and the orders
before it.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from django.contrib.auth import get_user_model
from django.db import connection, transaction

from orders.models import DeliveryQuote, GpuModel, OrderLine, PurchaseOrder, Vendor
from tests.factories import PurchaseOrderFactory
from tests.integration.conftest import (
    ROOT,
    RedisServer,
    needs_real_services,
    subprocess_database_url,
    wait_for,
)

pytestmark = [needs_real_services, pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROWS = 4000
HELD_PO = f"PO-CUT-{ROWS // 2:05d}"


def _orders_file(path: Path) -> Path:
    lines = [
        "po_number,vendor,buyer_email,gpu_model,quantity,unit_price,currency,placed_on,"
        "quoted_on,delivery_date"
    ]
    lines += [
        f"PO-CUT-{i:05d},Cut Vendor {i % 20},buyer{i % 40}@cut.example,H100 SXM,8,25000.00,USD,"
        "2023-04-14,2023-04-14,2023-06-30"
        for i in range(1, ROWS + 1)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@contextmanager
def _order_held_uncommitted(po_number: str) -> Iterator[int]:
    """A transaction on another connection that has inserted, and not committed, an order with
    this PO number; yields its backend's pid and rolls back at the end."""
    ready, release = threading.Event(), threading.Event()
    held: list[int] = []

    class Rollback(Exception):
        pass

    def hold() -> None:
        try:
            with transaction.atomic():
                PurchaseOrderFactory(po_number=po_number)
                held.append(connection.connection.info.backend_pid)
                ready.set()
                release.wait(60)
                raise Rollback
        except Rollback:
            pass
        finally:
            ready.set()
            connection.close()

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert ready.wait(30), "the holding transaction did not start"
        assert held, "the holding transaction failed"
        yield held[0]
    finally:
        release.set()
        thread.join()


def _waiting_on(pid: int) -> list[int]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", [pid]
        )
        return [row[0] for row in cursor.fetchall()]


def _import(path: Path, broker_url: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "manage.py", "import_orders", str(path)],
        cwd=ROOT,
        env={
            "PATH": "/usr/bin:/bin",
            "DATABASE_URL": subprocess_database_url(),
            "CELERY_BROKER_URL": broker_url,  # no worker: the slip checks it queues stay there
        },
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _from_the_file() -> dict[str, int]:
    return {
        "vendors": Vendor.objects.filter(name__startswith="Cut Vendor").count(),
        "buyers": get_user_model().objects.filter(email__endswith="@cut.example").count(),
        "GPU models": GpuModel.objects.filter(name="H100 SXM").count(),
        "orders": PurchaseOrder.objects.filter(po_number__startswith="PO-CUT-").count(),
        "lines": OrderLine.objects.filter(order__po_number__startswith="PO-CUT-").count(),
        "quotes": DeliveryQuote.objects.filter(order__po_number__startswith="PO-CUT-").count(),
    }


def test_an_import_whose_connection_is_killed_leaves_nothing_and_can_be_run_again(
    tmp_path: Path, redis_servers: Callable[..., RedisServer]
) -> None:
    broker = redis_servers("--save", "", "--appendonly", "no")
    broker.start()
    path = _orders_file(tmp_path / "orders.csv")

    with _order_held_uncommitted(HELD_PO) as holder:
        run = _import(path, broker.url)
        try:
            [importer] = wait_for(lambda: _waiting_on(holder), 120, "the import to reach the PO")
        except AssertionError:
            run.kill()
            raise AssertionError(run.communicate()) from None
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_terminate_backend(%s)", [importer])
        out, err = run.communicate(timeout=60)

    assert run.returncode != 0, out
    assert "Traceback" not in err, err
    assert (
        "file: The database connection was lost (terminating connection due to administrator "
        "command). Nothing was imported: the file is written in one transaction, and it was "
        "not committed. Import the file again."
    ) in err, err
    assert _from_the_file() == dict.fromkeys(_from_the_file(), 0)
    assert broker.client().llen("celery") == 0  # no check was queued for orders never committed

    run = _import(path, broker.url)
    out, err = run.communicate(timeout=300)
    assert run.returncode == 0, err
    assert f"{ROWS} row(s) read." in out
    assert _from_the_file() == {
        "vendors": 20,
        "buyers": 40,
        "GPU models": 1,
        "orders": ROWS,
        "lines": ROWS,
        "quotes": ROWS,
    }
    assert broker.client().llen("celery") > 0  # the slip checks of the committed import
