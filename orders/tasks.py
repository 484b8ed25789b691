"""Celery tasks: thin, idempotent wrappers that take ids and call one service each."""

from __future__ import annotations

import smtplib
from typing import Any

from celery import shared_task
from django.db import OperationalError, transaction

from orders import alerts, notifications, prices

# Database hiccups are worth retrying; a bug is not.
TRANSIENT_DB = (OperationalError,)
TRANSIENT_SMTP = (smtplib.SMTPException, OSError)


def enqueue_sends(email_ids: list[int]) -> None:
    """Queue one send task per digest once the digests are committed."""
    for email_id in email_ids:
        transaction.on_commit(lambda email_id=email_id: send_alert_email.delay(email_id))


@shared_task(acks_late=True, autoretry_for=TRANSIENT_DB, retry_backoff=True, max_retries=5)
def check_orders(order_ids: list[int]) -> dict[str, Any]:
    """Re-judge orders right after new quotes for them were committed (one task per batch,
    so a bulk import does not queue a task per order)."""
    result = alerts.scan_orders(order_ids=order_ids)
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
    return result.as_dict()


@shared_task(acks_late=True, autoretry_for=TRANSIENT_DB, retry_backoff=True, max_retries=5)
def check_prices() -> dict[str, Any]:
    """Re-judge price histories right after new prices were committed."""
    result = prices.scan_prices()
    email_ids = notifications.build_digests()
    enqueue_sends(email_ids)
    return {"new_alerts": result.new_alerts, "emails": len(email_ids)}


@shared_task(
    acks_late=True,
    autoretry_for=TRANSIENT_SMTP + TRANSIENT_DB,
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
        send_alert_email.delay(email_id)
    return len(email_ids)
