"""Who gets which email: pending alert notices become one digest per recipient per run, kept
in an outbox and sent exactly once (barring a crash between the SMTP server's "accepted" and
our commit, where the stable Message-ID lets mail clients drop the duplicate)."""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.core.mail import EmailMultiAlternatives
from django.db import transaction
from django.db.models import Exists, F, OuterRef, Prefetch, QuerySet
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils import timezone

from orders.alerts import order_recipients
from orders.bulk import update_by_pk
from orders.models import (
    AlertNotice,
    OrderLine,
    OutboxEmail,
    PriceAlert,
    PurchaseOrder,
    SlipAlert,
    TeamSlipNotice,
    open_alert_q,
)
from orders.models.alerts import SKIPPED_ALERT_CLOSED
from orders.prices import price_alerts_hidden, price_recipients
from orders.quotas import TeamBlock, team_slips
from orders.slips import RANK, worst
from orders.text import header_text

# Errors in the stored message itself, raised before the SMTP server is asked: a header with a
# line break (BadHeaderError), an address that cannot be parsed. Sending the same row again
# fails the same way, so it is not retried: it goes `undeliverable` and never holds a worker
# or the sweep again. A refusal by the server is another matter (orders.tasks, SMTP_FAILURES).
UNSENDABLE = (ValueError,)

logger = logging.getLogger(__name__)

SKIPPED_NO_ACCESS = (
    "recipient is inactive, has no email, or no longer buys, watches or may see the order"
)


@dataclass
class OrderBlock:
    """One order in a digest: its figures, a link, and the alerts to report."""

    order: PurchaseOrder
    alerts: list[SlipAlert] = field(default_factory=list)

    @property
    def url(self) -> str:
        return settings.SITE_URL + reverse(
            "admin:orders_purchaseorder_change", args=[self.order.pk]
        )

    @property
    def gpus(self) -> str:
        return ", ".join(
            f"{line.quantity}x {line.gpu_model.name}" for line in self.order.lines.all()
        )

    @property
    def lead_change(self) -> str:
        base, cur = self.order.baseline_lead_days, self.order.current_lead_days
        if base is None or cur is None:
            return ""
        ratio = f", x{cur / base:.1f}" if base > 0 else ""
        return f"{base} -> {cur} days{ratio}"

    @property
    def sorted_alerts(self) -> list[SlipAlert]:
        return sorted(self.alerts, key=lambda a: RANK[a.code])


@dataclass
class Digest:
    recipient_email: str
    new: dict[int, OrderBlock] = field(default_factory=dict)
    reminders: dict[int, OrderBlock] = field(default_factory=dict)
    # Orders told about but not listed: past DIGEST_MAX_ORDERS a section links to the admin.
    new_more: int = 0
    reminders_more: int = 0
    prices: list[PriceAlert] = field(default_factory=list)
    teams: dict[int, TeamBlock] = field(default_factory=dict)
    notice_ids: list[int] = field(default_factory=list)
    team_notice_ids: list[int] = field(default_factory=list)

    def subject(self) -> str:
        """One line, whatever the names and numbers it quotes hold (orders.text.header_text)."""
        return header_text(self._subject())

    def _subject(self) -> str:
        blocks = list(self.new.values()) or list(self.reminders.values())
        if not blocks and self.teams:  # a team lead who does not buy or watch the orders
            return self._team_subject()
        if not blocks:  # price rises only
            rises = sorted(self.prices, key=lambda a: -a.rise_percent)
            shown = ", ".join(
                f"{a.gpu_model.name} +{a.rise_percent:.1f}% ({a.vendor.name})" for a in rises[:2]
            )
            more = f" +{len(rises) - 2} more" if len(rises) > 2 else ""
            return f"[GPU price] {shown}{more}"
        po_numbers = [b.order.po_number for b in blocks]
        named = po_numbers[:3]
        more = len(po_numbers) - len(named) + (self.new_more if self.new else self.reminders_more)
        shown = ", ".join(named) + (f" +{more} more" if more else "")
        code = worst(a.code for b in blocks for a in b.alerts)
        label = SlipAlert.Code(code).label if code else "slip"
        prefix = "[GPU slip] " if self.new else "[GPU slip] Reminder: "
        prices = f" and {len(self.prices)} price rise{'s' if len(self.prices) > 1 else ''}"
        return f"{prefix}{shown}: {label}{prices if self.prices else ''}"

    def _team_subject(self) -> str:
        blocks = sorted(self.teams.values(), key=lambda b: b.team.name)
        slips = [s for b in blocks for s in b.sorted_slips]
        po_numbers = list(dict.fromkeys(s.allocation.line.order.po_number for s in slips))
        shown = ", ".join(po_numbers[:3]) + (
            f" +{len(po_numbers) - 3} more" if len(po_numbers) > 3 else ""
        )
        teams = ", ".join(b.team.name for b in blocks)
        past = " (past the quota period's end)" if any(s.past_period_end for s in slips) else ""
        return f"[GPU slip] {teams}: GPUs on {shown} slipped{past}"

    def context(self) -> dict[str, Any]:
        return {
            "new": list(self.new.values()),
            "new_count": len(self.new) + self.new_more,
            "new_more": self.new_more,
            "reminders": list(self.reminders.values()),
            "reminders_count": len(self.reminders) + self.reminders_more,
            "reminders_more": self.reminders_more,
            "prices": sorted(self.prices, key=lambda a: -a.rise_percent),
            "teams": sorted(self.teams.values(), key=lambda b: b.team.name),
            "escalate_days": settings.SLIP_ESCALATE_DAYS,
            "price_threshold": f"{settings.PRICE_RISE_THRESHOLD_PERCENT:g}",
            "price_window": settings.PRICE_RISE_WINDOW_DAYS,
            "site_url": settings.SITE_URL,
        }


def build_digests() -> list[int]:
    """Turn every pending notice (buyers', watchers', managers' and team leads') into one
    outbox email per recipient; return their ids.

    Notices are claimed with SELECT ... FOR UPDATE SKIP LOCKED, so two runs at once never put
    the same notice in two emails."""
    with transaction.atomic():
        pending = list(
            AlertNotice.objects.select_for_update(skip_locked=True, of=("self",))
            .filter(email__isnull=True, skipped_reason="")
            .order_by("id")
            .values_list(
                "id",
                "alert_id",
                "alert__order_id",
                "alert__code",
                "alert__status",
                "price_alert_id",
                "recipient_id",
                "recipient_email",
                "round",
                named=True,
            )
        )
        team_pending = list(
            TeamSlipNotice.objects.select_for_update(skip_locked=True)
            .filter(email__isnull=True, skipped_reason="")
            .order_by("id")
            .values_list("id", "alert_id", "team_id", "recipient_id", "recipient_email")
        )
        if not pending and not team_pending:
            return []
        price_alerts = {
            a.pk: a
            for a in PriceAlert.objects.filter(
                pk__in={p.price_alert_id for p in pending if p.price_alert_id is not None}
            ).select_related("vendor", "gpu_model", "price", "low")
        }
        # Checked again at send time: access may have changed since the alert was found.
        allowed = {
            order_id: {user_id for user_id, _ in users}
            # The pending notices' orders as a subquery, not an IN list of (after an outage)
            # 100,000 ids; a superset, where another run holds some, which costs nothing.
            for order_id, users in order_recipients(
                AlertNotice.objects.filter(
                    email__isnull=True, skipped_reason="", alert__isnull=False
                ).values("alert__order_id")
            ).items()
        }
        price_allowed = {
            gpu_model_id: {user_id for user_id, _ in users}
            for gpu_model_id, users in price_recipients(
                {a.gpu_model_id for a in price_alerts.values()}
            ).items()
        }
        # A buyer who may no longer see one of an alert's two prices (another buyer's order
        # price) is not told of it: the rule the price pages use, asked again at send time.
        price_hidden = price_alerts_hidden(
            list(price_alerts),
            {p.recipient_id for p in pending if p.price_alert_id and p.recipient_id is not None},
        )
        digests: dict[str, Digest] = {}
        # Per digest, per round kind (new, reminder): order id -> [(alert id, code)].
        slips: dict[tuple[str, bool], dict[int, list[tuple[int, str]]]] = defaultdict(dict)
        skipped: list[int] = []
        closed: list[int] = []
        for (
            notice_id,
            alert_id,
            order_id,
            code,
            alert_status,
            price_alert_id,
            user_id,
            email,
            round_,
        ) in pending:
            if price_alert_id is not None:
                price_alert = price_alerts[price_alert_id]
                if user_id is not None and (
                    user_id not in price_allowed.get(price_alert.gpu_model_id, set())
                    or (price_alert_id, user_id) in price_hidden
                ):
                    skipped.append(notice_id)
                    continue
                digest = digests.setdefault(email, Digest(email))
                digest.prices.append(price_alert)
                digest.notice_ids.append(notice_id)
                continue
            if alert_status != SlipAlert.Status.OPEN:  # replaced or no longer true
                closed.append(notice_id)
                continue
            if user_id is not None and user_id not in allowed.get(order_id, set()):
                skipped.append(notice_id)
                continue
            digest = digests.setdefault(email, Digest(email))
            slips[email, round_ == 0].setdefault(order_id, []).append((alert_id, code))
            digest.notice_ids.append(notice_id)
        _add_order_blocks(digests, slips)
        if skipped:
            AlertNotice.objects.filter(pk__in=skipped).update(skipped_reason=SKIPPED_NO_ACCESS)
        if closed:
            AlertNotice.objects.filter(pk__in=closed).update(skipped_reason=SKIPPED_ALERT_CLOSED)
        if team_pending:
            _add_team_slips(digests, team_pending)
        emails = OutboxEmail.objects.bulk_create([_render(d) for d in digests.values()])
        sent_with = list(zip(digests.values(), emails, strict=True))
        # One statement: bulk_update's CASE per row took minutes for 150,000 notices.
        update_by_pk(
            AlertNotice,
            "email_id",
            [
                (notice_id, email.pk)
                for digest, email in sent_with
                for notice_id in digest.notice_ids
            ],
        )
        TeamSlipNotice.objects.bulk_update(
            [
                TeamSlipNotice(pk=notice_id, email_id=email.pk)
                for digest, email in sent_with
                for notice_id in digest.team_notice_ids
            ],
            ["email"],
            batch_size=1000,
        )
        return [email.pk for email in emails]


def _add_order_blocks(
    digests: dict[str, Digest], slips: dict[tuple[str, bool], dict[int, list[tuple[int, str]]]]
) -> None:
    """Give each digest its order blocks, worst first, at most DIGEST_MAX_ORDERS a section:
    past that the email counts the rest and links to the admin's unacknowledged alerts (after
    an outage a buyer can have thousands; an email listing them all is unreadable, and too
    big for mail servers). Only the orders shown are loaded, in three queries in all."""
    limit = settings.DIGEST_MAX_ORDERS
    shown: dict[tuple[str, bool], list[int]] = {}
    for key, by_order in slips.items():
        worst_first = sorted(by_order, key=lambda o: min(RANK[code] for _, code in by_order[o]))
        shown[key] = worst_first[:limit]
        email, new = key
        hidden = len(worst_first) - len(shown[key])
        if new:
            digests[email].new_more = hidden
        else:
            digests[email].reminders_more = hidden
    alert_ids = {a for key, ids in shown.items() for o in ids for a, _ in slips[key][o]}
    alerts = SlipAlert.objects.filter(pk__in=alert_ids).select_related("quote").in_bulk()
    orders = (
        PurchaseOrder.objects.filter(pk__in={o for ids in shown.values() for o in ids})
        .select_related("vendor")
        .prefetch_related(Prefetch("lines", queryset=OrderLine.objects.select_related("gpu_model")))
        .in_bulk()
    )
    for (email, new), order_ids in shown.items():
        section = digests[email].new if new else digests[email].reminders
        for order_id in order_ids:
            block = OrderBlock(orders[order_id])
            block.alerts = [alerts[a] for a, _ in slips[email, new][order_id]]
            section[order_id] = block


def _add_team_slips(
    digests: dict[str, Digest], pending: list[tuple[int, int, int, int, str]]
) -> None:
    """Put each team lead's slipped GPUs in their digest, one block per team; skip notices
    whose recipient no longer leads the team or whose GPUs are no longer waiting."""
    slips, skipped = team_slips((n_id, alert, team, user) for n_id, alert, team, user, _ in pending)
    for reason in set(skipped.values()):
        TeamSlipNotice.objects.filter(
            pk__in=[n for n, why in skipped.items() if why == reason]
        ).update(skipped_reason=reason)
    for notice_id, _, team_id, _, email in pending:
        if notice_id not in slips:
            continue
        digest = digests.setdefault(email, Digest(email))
        for slip in slips[notice_id]:
            block = digest.teams.setdefault(team_id, TeamBlock(slip.allocation.quota.team))
            block.add(slip)
        digest.team_notice_ids.append(notice_id)


def _render(digest: Digest) -> OutboxEmail:
    context = digest.context()
    return OutboxEmail(
        recipient_email=digest.recipient_email,
        subject=digest.subject()[:300].rstrip(),
        body_text=render_to_string("email/slip_digest.txt", context),
        body_html=render_to_string("email/slip_digest.html", context),
    )


def send_outbox_email(email_id: int) -> bool:
    """Send one digest if nobody else is sending or has sent it. Returns whether it was sent
    by this call; raises on SMTP failure (after marking it FAILED) so the task can retry.
    A digest that cannot be made into an email (UNSENDABLE) is marked UNDELIVERABLE, with the
    reason, and not raised: no retry could send it."""
    claimed = OutboxEmail.objects.filter(
        pk=email_id, status__in=[OutboxEmail.Status.READY, OutboxEmail.Status.FAILED]
    ).update(
        status=OutboxEmail.Status.SENDING, claimed_at=timezone.now(), attempts=F("attempts") + 1
    )
    if not claimed:
        return False
    email = OutboxEmail.objects.get(pk=email_id)
    message = EmailMultiAlternatives(
        # header_text again: a digest stored before subjects were made one line.
        subject=header_text(email.subject),
        body=email.body_text,
        from_email=settings.DEFAULT_FROM_EMAIL,
        to=[email.recipient_email],
        headers={"Message-ID": email.message_id},
    )
    message.attach_alternative(email.body_html, "text/html")
    try:
        message.send(fail_silently=False)
    except UNSENDABLE as exc:
        OutboxEmail.objects.filter(pk=email_id).update(
            status=OutboxEmail.Status.UNDELIVERABLE, last_error=_error_text(exc)
        )
        logger.error("Alert email %s cannot be sent and will not be retried: %s", email_id, exc)
        return False
    except Exception as exc:
        OutboxEmail.objects.filter(pk=email_id).update(
            status=OutboxEmail.Status.FAILED, last_error=_error_text(exc)
        )
        raise
    now = timezone.now()
    with transaction.atomic():
        OutboxEmail.objects.filter(pk=email_id).update(
            status=OutboxEmail.Status.SENT, sent_at=now, last_error=""
        )
        SlipAlert.objects.filter(
            notices__email_id=email_id, notices__round=0, notified_at__isnull=True
        ).update(notified_at=now)
        PriceAlert.objects.filter(notices__email_id=email_id, notified_at__isnull=True).update(
            notified_at=now
        )
    return True


def _error_text(exc: Exception) -> str:
    return header_text(f"{type(exc).__name__}: {exc}")[:500]


def sweep_outbox() -> list[int]:
    """Ids of digests to (re)send: failed ones, ready ones whose send task may have been lost,
    and ones stuck "sending" by a worker that died."""
    now = timezone.now()
    stale = now - timedelta(minutes=settings.OUTBOX_STALE_SENDING_MINUTES)
    OutboxEmail.objects.filter(status=OutboxEmail.Status.SENDING, claimed_at__lt=stale).update(
        status=OutboxEmail.Status.FAILED, last_error="Sender stopped before finishing."
    )
    return list(
        OutboxEmail.objects.filter(
            status__in=[OutboxEmail.Status.READY, OutboxEmail.Status.FAILED],
            created_at__lt=now - timedelta(minutes=1),
        ).values_list("pk", flat=True)
    )


def untold_alerts() -> QuerySet[SlipAlert]:
    """Open slip alerts (open_alert_q, on open orders) that nobody has been or will be told
    of: never emailed, and no notice to a buyer, watcher, manager or team lead that is
    waiting or was sent, because every candidate is inactive, has no address or may not see
    the order. An operator's list of who to give a role, an address or a watch."""
    told = AlertNotice.objects.filter(alert=OuterRef("pk"), skipped_reason="")
    told_lead = TeamSlipNotice.objects.filter(alert=OuterRef("pk"), skipped_reason="")
    return (
        SlipAlert.objects.filter(
            open_alert_q(),
            notified_at__isnull=True,
            order__status__in=PurchaseOrder.OPEN_STATUSES,
        )
        .exclude(Exists(told))
        .exclude(Exists(told_lead))
    )
