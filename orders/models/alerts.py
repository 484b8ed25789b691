"""What the slip scan found, who must be told, and the email outbox that tells them once.

SlipAlert: one per (order, rule, triggering quote), and at most one OPEN per (order, rule);
the unique constraints are what make concurrent or repeated scans harmless. A newer finding
for a rule supersedes the open one; a finding that no longer holds is resolved. Both stay as
history, with when and why they were closed. AlertNotice: one alert for one recipient in one round
(0 when found, n for the nth escalation), unique likewise. OutboxEmail: one digest for one
recipient; claimed READY -> SENDING by exactly one sender, SENT only once the SMTP server
accepted it.
"""

from __future__ import annotations

import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from orders.models.prices import PriceAlert
from orders.models.procurement import DeliveryQuote, PurchaseOrder
from orders.slips import Code, Severity


class SlipAlert(models.Model):
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        SUPERSEDED = "superseded", "Superseded"
        RESOLVED = "resolved", "Resolved"

    Code = models.TextChoices(
        "Code", [(c.name, (c.value, c.value.replace("_", " "))) for c in Code]
    )
    Severity = models.TextChoices("Severity", [(s.name, (s.value, s.value)) for s in Severity])

    # No index of its own: the unique (order, code, quote) index leads with it. Each index
    # costs the scan's first run a write per alert (bench/scan_slips.py).
    order = models.ForeignKey(
        PurchaseOrder, on_delete=models.CASCADE, related_name="alerts", db_index=False
    )
    code = models.CharField(max_length=32, choices=Code.choices)
    severity = models.CharField(max_length=16, choices=Severity.choices)
    quote = models.ForeignKey(
        DeliveryQuote,
        on_delete=models.CASCADE,
        related_name="alerts",
        help_text="The quote that made this true.",
    )
    message = models.CharField(max_length=300)
    detected_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(
        null=True, blank=True, help_text="When an SMTP server first accepted an email about it."
    )
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
        db_index=False,  # a partial index below: new alerts are never acknowledged yet
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)
    # Database defaults as well: the scan's bulk INSERT names only the columns it finds.
    status = models.CharField(
        max_length=12, choices=Status.choices, default=Status.OPEN, db_default=Status.OPEN
    )
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_reason = models.CharField(max_length=200, blank=True, default="", db_default="")

    class Meta:
        ordering = ["-detected_at", "-id"]
        verbose_name = "slip alert"
        constraints = [
            models.UniqueConstraint(
                fields=["order", "code", "quote"], name="slipalert_one_per_order_code_quote"
            ),
            # Partial: closed alerts are history, any number of them.
            models.UniqueConstraint(
                fields=["order", "code"],
                condition=Q(status="open"),
                name="slipalert_one_open_per_order_code",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["open", "superseded", "resolved"]),
                name="slipalert_status_valid",
            ),
            models.CheckConstraint(
                condition=Q(status="open", closed_at__isnull=True)
                | (~Q(status="open") & Q(closed_at__isnull=False)),
                name="slipalert_closed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(code__in=[c.value for c in Code]), name="slipalert_code_valid"
            ),
            models.CheckConstraint(
                condition=Q(severity__in=[s.value for s in Severity]),
                name="slipalert_severity_valid",
            ),
            models.CheckConstraint(
                condition=Q(acknowledged_by__isnull=True) | Q(acknowledged_at__isnull=False),
                name="slipalert_acknowledged_has_time",
            ),
        ]
        indexes = [
            models.Index(fields=["acknowledged_at", "detected_at"]),
            models.Index(
                fields=["acknowledged_by"],
                condition=Q(acknowledged_by__isnull=False),
                name="slipalert_acknowledged_by",
            ),
            # Open alerts (open_alert_q) by order: what the dashboard counts and the order
            # lists show, read from the index alone whatever the number of closed alerts.
            models.Index(
                fields=["order", "code", "severity"],
                condition=Q(status="open", acknowledged_at__isnull=True),
                name="slipalert_open_by_order",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.order}: {self.get_code_display()}"

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None

    @property
    def is_open(self) -> bool:
        return self.status == self.Status.OPEN


# Why a notice about a slip alert was not sent: the alert closed before its digest was built.
SKIPPED_ALERT_CLOSED = "the alert was superseded or resolved before it was sent"


def open_alert_q(prefix: str = "") -> Q:
    """Slip alerts that are still news: open (their finding holds for the order's current
    schedule) and nobody acknowledged them. `prefix` reaches them through a relation
    ("alerts__" from an order). What the dashboard, exports, scorecards and order lists
    call "open alerts"."""
    return Q(**{f"{prefix}status": SlipAlert.Status.OPEN, f"{prefix}acknowledged_at__isnull": True})


def new_message_id() -> str:
    domain = settings.DEFAULT_FROM_EMAIL.rsplit("@", 1)[-1].strip("> ") or "localhost"
    return f"<slip-{uuid.uuid4().hex}@{domain}>"


class OutboxEmail(models.Model):
    class Status(models.TextChoices):
        READY = "ready", "Ready"
        SENDING = "sending", "Sending"
        SENT = "sent", "Sent"
        FAILED = "failed", "Failed (will retry)"
        # The message itself cannot be sent (orders.notifications.UNSENDABLE): never retried.
        UNDELIVERABLE = "undeliverable", "Undeliverable (not retried)"

    recipient_email = models.EmailField()
    subject = models.CharField(max_length=300)
    body_text = models.TextField()
    body_html = models.TextField()
    # Stable across retries, so a mail client can drop the rare duplicate a crash could cause.
    message_id = models.CharField(
        max_length=200, unique=True, editable=False, default=new_message_id
    )
    status = models.CharField(max_length=13, choices=Status.choices, default=Status.READY)
    attempts = models.PositiveIntegerField(default=0)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    claimed_at = models.DateTimeField(null=True, blank=True)
    sent_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "alert email"
        constraints = [
            models.CheckConstraint(
                condition=~Q(status="sent") | Q(sent_at__isnull=False),
                name="outbox_sent_has_time",
            ),
        ]
        indexes = [models.Index(fields=["status", "claimed_at"])]

    def __str__(self) -> str:
        return f"{self.recipient_email}: {self.subject}"


class AlertNotice(models.Model):
    """One alert (a slip or a price rise) to tell one recipient in one round: 0 when found,
    n for the nth escalation of a slip."""

    # Indexed by the unique (alert, recipient_email, round) and (email, skipped_reason) below.
    alert = models.ForeignKey(
        SlipAlert,
        on_delete=models.CASCADE,
        related_name="notices",
        db_index=False,
        null=True,
        blank=True,
    )
    price_alert = models.ForeignKey(
        PriceAlert,
        on_delete=models.CASCADE,
        related_name="notices",
        db_index=False,
        null=True,
        blank=True,
    )
    recipient_email = models.EmailField()
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="+",
        help_text="Empty for procurement managers configured by address only.",
    )
    round = models.PositiveSmallIntegerField(default=0)
    email = models.ForeignKey(
        OutboxEmail,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="notices",
        db_index=False,
    )
    skipped_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        constraints = [
            # Partial: a notice is about one kind of alert, and an index entry for the other
            # kind's empty column would be written for every notice for nothing.
            models.UniqueConstraint(
                fields=["alert", "recipient_email", "round"],
                condition=Q(alert__isnull=False),
                name="notice_once_per_round",
            ),
            models.UniqueConstraint(
                fields=["price_alert", "recipient_email", "round"],
                condition=Q(price_alert__isnull=False),
                name="price_notice_once_per_round",
            ),
            models.CheckConstraint(
                condition=Q(alert__isnull=True) ^ Q(price_alert__isnull=True),
                name="notice_is_about_one_alert",
            ),
        ]
        indexes = [models.Index(fields=["email", "skipped_reason"])]

    def __str__(self) -> str:
        return f"{self.alert or self.price_alert} -> {self.recipient_email} (round {self.round})"


class ScanRun(models.Model):
    """A record of each full scan, so an operator can see when it last ran and what it found."""

    started_at = models.DateTimeField(default=timezone.now)
    finished_at = models.DateTimeField(null=True, blank=True)
    scanned_for = models.DateField(help_text='The "today" the rules were evaluated for.')
    orders = models.PositiveIntegerField(default=0)
    findings = models.JSONField(default=dict, help_text="Findings per rule code.")
    new_alerts = models.PositiveIntegerField(default=0)
    notices = models.PositiveIntegerField(default=0)
    emails = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["-started_at", "-id"]

    def __str__(self) -> str:
        return f"Scan for {self.scanned_for} at {self.started_at:%Y-%m-%d %H:%M}"
