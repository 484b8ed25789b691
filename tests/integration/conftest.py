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
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

import pytest
import redis
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
    the same port, to play an SMTP outage; made to refuse (`refuse_mail`, `refuse_data`: the
    reply to MAIL FROM, or to the end of DATA, instead of 250); or made to hang (`hang()`: the
    port accepts connections and never says a word)."""

    port: int = field(default_factory=_free_port)
    messages: list[Message] = field(default_factory=list)
    refuse_mail: str | None = None
    refuse_data: str | None = None
    refused: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _controller: Controller | None = None
    _silent: socket.socket | None = None

    async def handle_MAIL(
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_mail:
            with self._lock:
                self.refused += 1
            return self.refuse_mail
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        with self._lock:
            if self.refuse_data:
                self.refused += 1
                return self.refuse_data
            self.messages.append(message_from_bytes(envelope.original_content))
        return "250 Message accepted for delivery"

    def start(self) -> None:
        self._close_silent()
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port)
        self._controller.start()

    def stop(self) -> None:
        self._close_silent()
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def hang(self) -> None:
        """Replace the server by a socket that listens and never answers: the kernel completes
        each connection, and the client waits for a greeting that never comes."""
        self.stop()
        silent = socket.socket()
        silent.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        silent.bind(("127.0.0.1", self.port))
        silent.listen(64)
        self._silent = silent

    def behave(self) -> None:
        """Accept everything again, on a running server."""
        self.refuse_mail = self.refuse_data = None
        if self._controller is None:
            self.start()

    def _close_silent(self) -> None:
        if self._silent is not None:
            self._silent.close()
            self._silent = None

    def count(self) -> int:
        with self._lock:
            return len(self.messages)

    def clear(self) -> None:
        with self._lock:
            self.messages.clear()
            self.refused = 0


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[Mailbox]:
    mailbox = Mailbox()
    mailbox.start()
    yield mailbox
    mailbox.stop()


@pytest.fixture
def mailbox(smtp_server: Mailbox) -> Iterator[Mailbox]:
    smtp_server.behave()
    smtp_server.clear()
    yield smtp_server
    smtp_server.behave()


@dataclass
class Worker:
    process: subprocess.Popen
    log: Path

    def tail(self) -> str:
        return self.log.read_text()[-5000:]

    def pool_children(self) -> list[int]:
        """Pids of the worker's pool processes (none with --pool=solo)."""
        found = subprocess.run(
            ["ps", "-o", "pid=", "--ppid", str(self.process.pid)],
            capture_output=True,
            text=True,
            check=False,
        )
        return [int(pid) for pid in found.stdout.split()]

    def kill(self) -> None:
        """SIGKILL the worker and its pool children at once: no warm shutdown, no ack, no
        message handed back to the broker, as when a host dies or the OOM killer strikes."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.kill()


def subprocess_database_url() -> str:
    """The test database (pytest-django's), as the URL a subprocess reads from DATABASE_URL."""
    from django.db import connection

    db = connection.settings_dict
    return f"postgres://{db['USER']}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


def start_worker(
    log: Path,
    *,
    broker_url: str,
    smtp_port: int,
    pool: str = "solo",
    env: dict[str, str] | None = None,
) -> Worker:
    """`celery worker` in its own process (and process group) on the test database, the
    given Redis broker and the test SMTP server; returns once it is consuming."""
    process_env = (
        os.environ
        | {
            "DATABASE_URL": subprocess_database_url(),
            "CELERY_BROKER_URL": broker_url,
            "EMAIL_URL": f"smtp://127.0.0.1:{smtp_port}",
            "EMAIL_TIMEOUT": "5",
            "SITE_URL": "https://procurement.example.com",
            "CONN_MAX_AGE": "0",
        }
        | (env or {})
    )
    pool_args = ["--pool=solo"] if pool == "solo" else [f"--pool={pool}", "--concurrency=1"]
    with log.open("w") as out:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "procurement",
                "worker",
                *pool_args,
                "--loglevel=INFO",
                "--without-gossip",
                "--without-mingle",
                "--without-heartbeat",
            ],
            cwd=ROOT,
            env=process_env,
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
    except BaseException:
        worker.kill()
        raise
    return worker


@pytest.fixture(scope="session")
def celery_worker_process(
    django_db_setup: Any, django_db_blocker: Any, smtp_server: Mailbox, tmp_path_factory: Any
) -> Iterator[Worker]:
    """`celery worker` in its own process, on the test database, the Redis broker and the
    test SMTP server: what production runs, minus the scale."""
    worker = start_worker(
        tmp_path_factory.mktemp("worker") / "worker.log",
        broker_url=REDIS_URL,
        smtp_port=smtp_server.port,
    )
    try:
        yield worker
    finally:
        worker.stop()


@contextmanager
def tasks_published_to(broker_url: str) -> Iterator[None]:
    """Make this test process publish tasks to that broker instead of running them
    in-process."""
    conf = celery_app.conf
    saved = conf.task_always_eager, conf.broker_url
    conf.task_always_eager, conf.broker_url = False, broker_url
    _forget_broker_connections()
    try:
        yield
    finally:
        _forget_broker_connections()
        conf.task_always_eager, conf.broker_url = saved


@pytest.fixture
def tasks_to_redis() -> Iterator[None]:
    """Make this test process publish tasks to Redis instead of running them in-process."""
    with tasks_published_to(REDIS_URL):
        yield


def _forget_broker_connections() -> None:
    """Drop the app's cached connection and producer pools, which are bound to the broker URL
    they were first made with (an earlier test may have made them for the default broker)."""
    celery_app._pool = None
    amqp = celery_app.__dict__.get("amqp")
    if amqp is not None:
        amqp._producer_pool = None


@pytest.fixture
def start_workers(
    django_db_setup: Any, smtp_server: Mailbox, tmp_path: Path
) -> Iterator[Callable[..., Worker]]:
    """Start workers of the test's own (see `start_worker`); those still running are stopped
    at the end."""
    started: list[Worker] = []

    def start(*, broker_url: str, pool: str = "solo", env: dict[str, str] | None = None) -> Worker:
        log = tmp_path / f"worker-{len(started) + 1}.log"
        worker = start_worker(
            log, broker_url=broker_url, smtp_port=smtp_server.port, pool=pool, env=env
        )
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


@dataclass
class RedisServer:
    """A redis-server of the test's own, on a private port and data directory, so a test can
    kill and restart it without disturbing the shared test Redis (and its worker)."""

    directory: Path
    options: tuple[str, ...]
    port: int = field(default_factory=_free_port)
    process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server",
                "--bind",
                "127.0.0.1",
                "--port",
                str(self.port),
                "--dir",
                str(self.directory),
                "--logfile",
                str(self.directory / "redis.log"),
                *self.options,
            ],
            start_new_session=True,
        )
        wait_for(self.ping, 30, f"redis-server on port {self.port}")

    def ping(self) -> bool:
        """True once the server answers (PING fails while it loads its data)."""
        try:
            return bool(self.client().ping())
        except redis.RedisError:
            return False

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5)

    def kill(self) -> None:
        """SIGKILL: the server gets no chance to save anything (a crash, an OOM kill)."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@pytest.fixture
def redis_servers(tmp_path: Path) -> Iterator[Callable[..., RedisServer]]:
    """Make private Redis servers (`options` are redis-server's); all are killed at the end."""
    made: list[RedisServer] = []

    def make(*options: str) -> RedisServer:
        directory = tmp_path / f"redis-{len(made) + 1}"
        directory.mkdir()
        server = RedisServer(directory, options)
        made.append(server)
        return server

    yield make
    for server in made:
        server.kill()
