"""Celery tasks: thin, idempotent wrappers that take ids and call one service each."""

from __future__ import annotations

import logging
import smtplib
from typing import Any

from celery import Task, shared_task
from django.db import OperationalError, transaction
from kombu.exceptions import OperationalError as BrokerOperationalError

from orders import alerts, notifications, prices

logger = logging.getLogger(__name__)

# Database hiccups are worth retrying; a bug is not.
TRANSIENT_DB = (OperationalError,)
# Every SMTP failure is retried: refused (4xx or 5xx), timed out, unreachable. No reply is taken
# as final, a "permanent" 5xx included: from a relay it is as often this side's fault (relay
# access, authentication, the sender's address, a size limit) as the recipient's, and giving up
# would lose the alert. The task retries 10 times with backoff (random waits of up to 1 s, 2 s,
# 4 s ... 512 s: within about 17 min); then the outbox sweep re-queues the digest every 10
# minutes until the server accepts it. Meanwhile it is `failed`, with the server's reply in
# last_error, under Alert emails in the admin. (An address that will never work is stopped by
# an operator: README, Permanent SMTP errors.) What is final is a digest that cannot be made
# into an email at all (notifications.UNSENDABLE, e.g. a line break in a header): no server
# was asked, the same row fails the same way every time, so it goes `undeliverable` at once.
SMTP_FAILURES = (smtplib.SMTPException, OSError)


def queue_after_commit(task: Task, *args: Any, otherwise: str) -> None:
    """Queue `task(*args)` once the current transaction commits (at once outside one). With
    the broker unreachable, what was committed stays committed (a saved quote gets no error
    page): the failure is logged, saying which periodic task makes up for it (`otherwise`)."""

    def send() -> None:
        try:
            task.delay(*args)
        except BrokerOperationalError as exc:
            logger.error("Could not queue %s (%s); %s", task.name, exc, otherwise)

    send.__qualname__ = f"queue_after_commit({task.name})"  # what on_commit's errors name
    transaction.on_commit(send)


def enqueue_sends(email_ids: list[int]) -> None:
    """Queue one send task per digest once the digests are committed."""
    for email_id in email_ids:
        queue_after_commit(
            send_alert_email, email_id, otherwise="the outbox sweep will send the digest."
        )


@shared_task(acks_late=True, autoretry_for=TRANSIENT_DB, retry_backoff=True, max_retries=5)
def check_orders(order_ids: list[int]) -> dict[str, Any]:
    """Re-judge orders right after new quotes for them were committed (one task per batch,
    so a bulk import does not queue a task per order)."""
    result = alerts.scan_orders(order_ids=order_ids)
    result.notices += alerts.alert_notices_create(order_ids=order_ids)
    result.email_ids = notifications.build_digests()
    enqueue_sends(result.email_ids)
    return result.as_dict()


@shared_task(acks_late=True, autoretry_for=TRANSIENT_DB, retry_backoff=True, max_retries=5)
def check_order(order_id: int) -> dict[str, Any]:
    """Re-judge one order. Kept for messages queued before `check_orders` existed."""
    return check_orders(order_ids=[order_id])


@shared_task(acks_late=True, autoretry_for=TRANSIENT_DB, retry_backoff=True, max_retries=5)
def scan_open_orders() -> dict[str, Any]:
    """The daily scan of every open order (Celery beat), for time-based rules like overdue."""
    result = alerts.run_full_scan()
    enqueue_sends(result.email_ids)
    summary = result.as_dict()
    logger.info("Daily slip scan: %s", summary)
    if result.untold:
        logger.warning(
            "%d open slip alert(s) nobody may be told of: their buyers and watchers are "
            "inactive, have no email or may not see the order (give one a role, an address or "
            "a watch).",
            result.untold,
        )
    return summary


@shared_task(acks_late=True, autoretry_for=TRANSIENT_DB, retry_backoff=True, max_retries=5)
def check_prices() -> dict[str, Any]:
    """Re-judge price histories right after new prices were committed."""
    result = prices.scan_prices()
    email_ids = notifications.build_digests()
    enqueue_sends(email_ids)
    return {"new_alerts": result.new_alerts, "emails": len(email_ids)}


@shared_task(
    acks_late=True,
    autoretry_for=SMTP_FAILURES + TRANSIENT_DB,
    retry_backoff=True,
    retry_backoff_max=600,
    max_retries=10,
)
def send_alert_email(email_id: int) -> bool:
    return notifications.send_outbox_email(email_id)


@shared_task(acks_late=True)
def sweep_outbox() -> int:
    """Re-queue digests that failed or whose send was lost (every few minutes, via beat)."""
    email_ids = notifications.sweep_outbox()
    for email_id in email_ids:
        # Each digest on its own: one that fails (run here in eager mode, or not queued) must
        # not keep the others from being sent.
        try:
            send_alert_email.delay(email_id)
        except Exception:
            logger.exception(
                "Alert email %s not sent by this sweep; the next one retries it", email_id
            )
    return len(email_ids)
