"""Rationing scarce GPUs: internal teams, their quotas per GPU model and period, and the GPUs
on order promised to them (allocations).

Row rules live here (clean() and CHECK/UNIQUE constraints). The two rules that span rows (a
line's allocations never exceed its quantity; a quota's never exceed the quota) are in
`Allocation.validate_limits()`, which orders.quotas calls with the line and quota rows locked:
a plain clean() would read the sums without a lock, and two managers could both pass it.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q, Sum
from django.db.models.functions import Lower
from django.utils import timezone

from orders.history import AuditedHistory
from orders.models.alerts import OutboxEmail, SlipAlert
from orders.models.procurement import GpuModel, OrderLine, PurchaseOrder
from orders.text import single_line, single_line_check

# Allocations that count against their quota: not those on a cancelled order's lines, whose
# GPUs will never come. The one definition every sum against a quota uses (Quota.clean,
# Allocation.validate_limits, orders.quotas.quotas_with_usage).
COUNTS_AGAINST_QUOTA = ~Q(line__order__status=PurchaseOrder.Status.CANCELLED)


def _period(start: object, end: object) -> str:
    return f"{start} to {end}"


class Team(models.Model):
    name = models.CharField(max_length=200, validators=[single_line("Team name")])
    lead = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.PROTECT,
        related_name="led_teams",
        help_text="Told by email when GPUs promised to the team slip.",
    )
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="teams")

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="team_name_unique_ci",
                violation_error_message="A team with this name already exists.",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="team_name_not_blank"),
            single_line_check("name", name="team_name_single_line"),
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if self.lead_id and not self.lead.email:
            raise ValidationError(
                {
                    "lead": f"Team lead {self.lead} has no email address; slip emails could not "
                    "reach them."
                }
            )


class Quota(models.Model):
    """How many GPUs of one model a team may be promised for one period."""

    # Indexed by the unique (team, GPU model, period start) constraint, which leads with it.
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="quotas", db_index=False)
    gpu_model = models.ForeignKey(
        GpuModel, on_delete=models.PROTECT, related_name="quotas", verbose_name="GPU model"
    )
    period_start = models.DateField()
    period_end = models.DateField(help_text="Last day of the period (inclusive).")
    gpus = models.PositiveIntegerField(
        "GPUs",
        validators=[MinValueValidator(1, "A quota must be at least 1 GPU, not %(value)s.")],
    )

    class Meta:
        ordering = ["team__name", "gpu_model__name", "period_start"]
        constraints = [
            models.CheckConstraint(
                condition=Q(gpus__gt=0),
                name="quota_gpus_positive",
                violation_error_message="A quota must be at least 1 GPU.",
            ),
            models.CheckConstraint(
                condition=Q(period_start__lte=F("period_end")),
                name="quota_period_start_not_after_end",
                violation_error_message="A quota period cannot end before it starts.",
            ),
            # Overlapping periods are refused by clean() and the service (an exclusion
            # constraint would be PostgreSQL-only); the database still refuses the plainest
            # overlap, two quotas starting the same day.
            models.UniqueConstraint(
                fields=["team", "gpu_model", "period_start"],
                name="quota_one_per_team_gpu_model_start",
                violation_error_message="This team already has a quota of that GPU model "
                "starting that day.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.team}: {self.gpus} {self.gpu_model} for {self.period}"

    @property
    def period(self) -> str:
        return _period(self.period_start, self.period_end)

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.period_start and self.period_end and self.period_start > self.period_end:
            errors["period_end"] = (
                f"Period end {self.period_end.isoformat()} is before its start "
                f"{self.period_start.isoformat()}."
            )
        elif self.team_id and self.gpu_model_id and self.period_start and self.period_end:
            overlapping = (
                Quota.objects.filter(
                    team_id=self.team_id,
                    gpu_model_id=self.gpu_model_id,
                    period_start__lte=self.period_end,
                    period_end__gte=self.period_start,
                )
                .exclude(pk=self.pk)
                .order_by("period_start")
                .first()
            )
            if overlapping is not None:
                errors["period_start"] = (
                    f"{self.team} already has a quota of {overlapping.gpus} {self.gpu_model} "
                    f"for {overlapping.period}, which overlaps {self.period}; quotas of one "
                    "team and GPU model cannot overlap."
                )
        if self.pk:
            saved = self.allocations.aggregate(
                total=Sum("gpus", filter=COUNTS_AGAINST_QUOTA),
                other_model=models.Count("pk", filter=~Q(line__gpu_model_id=self.gpu_model_id)),
            )
            allocated = saved["total"] or 0
            if self.gpus is not None and self.gpus < allocated:
                errors["gpus"] = (
                    f"Quota of {self.gpus} GPUs is below the {allocated} already allocated "
                    "under it; reduce or move allocations first."
                )
            if saved["other_model"]:
                errors["gpu_model"] = (
                    f"This quota has allocations of another GPU model than {self.gpu_model}; "
                    "remove them before changing the GPU model."
                )
        if errors:
            raise ValidationError(errors)


class Allocation(models.Model):
    """GPUs of one order line promised to a team, counted against one of its quotas."""

    # Indexed by the unique (quota, line) constraint, which leads with it.
    quota = models.ForeignKey(
        Quota, on_delete=models.CASCADE, related_name="allocations", db_index=False
    )
    line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="allocations")
    gpus = models.PositiveIntegerField(
        "GPUs",
        validators=[MinValueValidator(1, "An allocation must be at least 1 GPU, not %(value)s.")],
    )
    priority = models.PositiveSmallIntegerField(
        default=10,
        validators=[MinValueValidator(1, "Priority must be at least 1, not %(value)s.")],
        help_text="1 is served first when the line's GPUs arrive; ties go to the older allocation.",
    )
    allocated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    updated_at = models.DateTimeField(auto_now=True)

    history = AuditedHistory(excluded_fields=["updated_at"], no_db_index=["quota", "allocated_by"])

    class Meta:
        ordering = ["line", "priority", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["quota", "line"],
                name="allocation_one_per_quota_and_line",
                violation_error_message="This quota already has an allocation on that line; "
                "change its number instead.",
            ),
            models.CheckConstraint(
                condition=Q(gpus__gt=0),
                name="allocation_gpus_positive",
                violation_error_message="An allocation must be at least 1 GPU.",
            ),
            models.CheckConstraint(
                condition=Q(priority__gte=1),
                name="allocation_priority_positive",
                violation_error_message="Priority must be at least 1.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.gpus} x {self.line.gpu_model} on {self.line.order} for {self.quota.team}"

    def clean(self) -> None:
        """Rules of the row itself; the limits across rows are in validate_limits()."""
        if not (self.quota_id and self.line_id):
            return
        quota, line = self.quota, self.line
        if line.gpu_model_id != quota.gpu_model_id:
            raise ValidationError(
                {
                    "line": f"Line {line.order} is for {line.gpu_model}, but this quota of "
                    f"{quota.team} is for {quota.gpu_model}."
                }
            )
        if line.order.status == PurchaseOrder.Status.CANCELLED and self.gpus:
            before = (
                Allocation.objects.filter(pk=self.pk).values_list("gpus", flat=True).first() or 0
            )
            if self.gpus > before:
                raise ValidationError(
                    {"line": f"{line.order} is cancelled: its GPUs cannot be promised to a team."}
                )

    def validate_limits(self, *, others_on_line: int | None = None) -> None:
        """Raise if this allocation would take its line past its quantity or its quota past
        its number of GPUs. Callers that must be right hold the line and quota rows locked
        (orders.quotas); admin forms call it unlocked to show the message early.

        `others_on_line`: what the line's other allocations will hold after the same save,
        when they change together (the order line page); by default, what is saved."""
        if not (self.quota_id and self.line_id and self.gpus):
            return
        quota, line = self.quota, self.line
        saved = Allocation.objects.exclude(pk=self.pk)
        if others_on_line is None:
            others_on_line = (
                saved.filter(line_id=line.pk).aggregate(total=Sum("gpus"))["total"] or 0
            )
        under_quota = saved.filter(COUNTS_AGAINST_QUOTA, quota_id=quota.pk)
        in_quota = under_quota.aggregate(total=Sum("gpus"))["total"] or 0
        errors = []
        if others_on_line + self.gpus > line.quantity:
            errors.append(
                f"Line {line.order} ({line.gpu_model}) has {line.quantity} GPUs; "
                f"{others_on_line} are already allocated elsewhere, so at most "
                f"{max(line.quantity - others_on_line, 0)} for {quota.team}, not {self.gpus}."
            )
        if in_quota + self.gpus > quota.gpus:
            errors.append(
                f"{quota.team}'s quota of {quota.gpu_model} for {quota.period} is "
                f"{quota.gpus} GPUs; {in_quota} are already allocated on other lines, so at "
                f"most {max(quota.gpus - in_quota, 0)} here, not {self.gpus}."
            )
        if errors:
            raise ValidationError({"gpus": errors})


class TeamSlipNotice(models.Model):
    """One slip alert to tell one team's lead about, once: the lead hears which of the team's
    GPUs moved, in the same one-per-recipient digest as buyers (orders.notifications)."""

    # Indexed by the unique (alert, team) constraint, which leads with it.
    alert = models.ForeignKey(
        SlipAlert, on_delete=models.CASCADE, related_name="team_notices", db_index=False
    )
    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="slip_notices")
    recipient = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The team's lead when the alert was found.",
    )
    recipient_email = models.EmailField()
    email = models.ForeignKey(
        OutboxEmail,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="team_notices",
        db_index=False,
    )
    skipped_reason = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["id"]
        verbose_name = "team slip notice"
        constraints = [
            models.UniqueConstraint(fields=["alert", "team"], name="team_notice_once_per_alert"),
        ]
        indexes = [models.Index(fields=["email", "skipped_reason"])]

    def __str__(self) -> str:
        return f"{self.alert} -> {self.team} ({self.recipient_email})"
