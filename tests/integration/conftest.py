"""Real components on loopback: the PostgreSQL test database, Redis as the Celery broker, a
Celery worker process, and an SMTP server whose mailbox the tests read.

scripts/test.sh starts PostgreSQL and Redis and exports DATABASE_URL and REDIS_URL; without
them the tests that need these parts are skipped.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from procurement.celery import app as celery_app
from tests.conftest import ON_POSTGRES

ROOT = Path(__file__).resolve().parents[2]
REDIS_URL = os.environ.get("REDIS_URL", "")

needs_real_services = pytest.mark.skipif(
    not (ON_POSTGRES and REDIS_URL),
    reason="needs PostgreSQL and Redis: run scripts/test.sh (or set DATABASE_URL and REDIS_URL)",
)


def wait_for(condition: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.1)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    """Messages an SMTP server on 127.0.0.1 accepted. It can be stopped and started again on
    the same port, to play an SMTP outage."""

    port: int = field(default_factory=_free_port)
    messages: list[Message] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            self.messages.append(message_from_bytes(envelope.original_content))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    mailbox.start()
    yield mailbox
    mailbox.stop()


@pytest.fixture
def mailbox(smtp_server: Mailbox) -> Iterator[Mailbox]:
    if smtp_server._controller is None:
        smtp_server.start()
    smtp_server.clear()
    yield smtp_server
    if smtp_server._controller is None:
        smtp_server.start()


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        return self.log.read_text()[-5000:]


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: Any, django_db_blocker: Any, smtp_server: Mailbox, tmp_path_factory: Any
) -> Iterator[Worker]:
    """`celery worker` in its own process, on the test database, the Redis broker and the
    test SMTP server: what production runs, minus the scale."""
    from django.db import connection

    db = connection.settings_dict
    env = os.environ | {
        "DATABASE_URL": f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}",
        "CELERY_BROKER_URL": REDIS_URL,
        "EMAIL_URL": f"smtp://127.0.0.1:{smtp_server.port}",
        "EMAIL_TIMEOUT": "5",
        "SITE_URL": "https://procurement.example.com",
        "CONN_MAX_AGE": "0",
    }
    log = tmp_path_factory.mktemp("worker") / "worker.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "procurement",
                "worker",
                "--pool=solo",
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    worker = Worker(process, log)
    try:
        wait_for(
            lambda: "ready." in log.read_text() or process.poll() is not None,
            60,
            "the Celery worker to start",
        )
        assert process.poll() is None, worker.tail()
        yield worker
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture
def tasks_to_redis() -> Iterator[None]:
    """Make this test process publish tasks to Redis instead of running them in-process."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager, conf.broker_url = False, REDIS_URL
    _forget_broker_connections()
    yield
    _forget_broker_connections()
    conf.task_always_eager, conf.broker_url = saved


def _forget_broker_connections() -> None:
    """Drop the app's cached connection and producer pools, which are bound to the broker URL
    they were first made with (an earlier test may have made them for the default broker)."""
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None
