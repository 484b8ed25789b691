"""Rationing: the services that promise GPUs on order to teams under quotas, the selectors
that say when those GPUs arrive, and the team leads' share of the slip emails.

Every allocation change goes through `allocation_set` or `allocations_move`, whether from
the admin, the demo loader or a test. They lock the quota row and the order line row(s) with
SELECT ... FOR UPDATE and re-sum under the locks, so two managers allocating at once cannot
oversubscribe a line or a quota. Locks are always taken in one order (team, then quotas,
then order lines by pk), so two services never wait on each other in a cycle.

Received GPUs of a line go to its allocations in priority order (1 first, ties to the older
allocation): an allocation has received min(its GPUs, what arrived minus what allocations
ahead of it took). GPUs that arrive beyond all allocations are nobody's yet.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F, Func, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Greatest, Least
from django.utils import timezone

from orders import history
from orders.bulk import insert_ignoring_conflicts
from orders.models import (
    Allocation,
    Delivery,
    DeliveryQuote,
    OrderLine,
    PurchaseOrder,
    Quota,
    SlipAlert,
    Team,
    TeamSlipNotice,
)
from orders.models.alerts import SKIPPED_ALERT_CLOSED
from orders.models.quotas import COUNTS_AGAINST_QUOTA
from orders.permissions import may_see_order_q
from orders.slips import RANK

# ---------------------------------------------------------------------------------------------
# Services


def _lock_quota(pk: int) -> Quota:
    # of=("self",): lock the quota row only, not the team and GPU model rows joined for names.
    return (
        Quota.objects.select_for_update(of=("self",)).select_related("team", "gpu_model").get(pk=pk)
    )


def _lock_lines(*pks: int) -> dict[int, OrderLine]:
    locked = (
        OrderLine.objects.select_for_update(of=("self",))
        .select_related("order", "gpu_model")
        .filter(pk__in=pks)
        .order_by("pk")
    )
    return {line.pk: line for line in locked}


@transaction.atomic
def quota_save(*, quota: Quota) -> Quota:
    """Create or change a quota. The team row is locked so two quotas of one team are never
    checked for overlap at the same time (an exclusion constraint would be PostgreSQL-only),
    and the quota row so a lower number is checked against allocations nobody is changing."""
    if quota.team_id:
        Team.objects.select_for_update().filter(pk=quota.team_id).first()
    if quota.pk:
        Quota.objects.select_for_update().filter(pk=quota.pk).first()
    quota.full_clean()
    quota.save()
    return quota


@transaction.atomic
def allocation_set(
    *,
    quota: Quota,
    line: OrderLine,
    gpus: int,
    priority: int | None = None,
    by: AbstractBaseUser | None = None,
) -> Allocation | None:
    """Promise `gpus` GPUs of an order line to the quota's team: create the allocation,
    change its number (and priority, when given), or remove it with 0. Returns it (None when
    removed). Raises ValidationError naming the limit and the numbers; nothing is saved then."""
    if gpus is None or gpus < 0:
        raise ValidationError({"gpus": f"Number of GPUs cannot be negative ({gpus})."})
    locked_quota = _lock_quota(quota.pk)
    locked_line = _lock_lines(line.pk)[line.pk]
    allocation = Allocation.objects.filter(quota=locked_quota, line=locked_line).first()
    if gpus == 0:
        if allocation is not None:
            history.attribute_to(allocation, by)
            allocation.delete()
        return None
    if allocation is None:
        allocation = Allocation()
    allocation.quota, allocation.line = locked_quota, locked_line
    allocation.gpus = gpus
    if priority is not None:
        allocation.priority = priority
    allocation.allocated_by = by
    allocation.full_clean()
    allocation.validate_limits()
    history.attribute_to(allocation, by)
    allocation.save()
    return allocation


@transaction.atomic
def allocations_move(
    *,
    quota: Quota,
    from_line: OrderLine,
    to_line: OrderLine,
    gpus: int,
    by: AbstractBaseUser | None = None,
) -> Allocation:
    """Move `gpus` of the quota's allocation from one order line (a slipping order) to
    another with free GPUs (an earlier one), in one step: both change or neither does.
    Returns the allocation on the new line; it keeps its priority there if it had one,
    else takes the moved one's."""
    if from_line.pk == to_line.pk:
        raise ValidationError({"to_line": "Pick another order line than the one to move from."})
    if gpus is None or gpus < 1:
        raise ValidationError({"gpus": f"Move at least 1 GPU, not {gpus}."})
    locked_quota = _lock_quota(quota.pk)
    lines = _lock_lines(from_line.pk, to_line.pk)
    source_line, target_line = lines[from_line.pk], lines[to_line.pk]
    team = locked_quota.team
    source = Allocation.objects.filter(quota=locked_quota, line=source_line).first()
    held = source.gpus if source is not None else 0
    if gpus > held:
        raise ValidationError(
            {
                "gpus": f"{team} has {held} GPUs allocated on {source_line.order} under this "
                f"quota; cannot move {gpus}."
            }
        )
    allocated = (
        Allocation.objects.filter(line=target_line).aggregate(total=Sum("gpus"))["total"] or 0
    )
    free = max(target_line.quantity - allocated, 0)
    if gpus > free:
        raise ValidationError(
            {
                "to_line": f"{target_line.order} ({target_line.gpu_model}) has {free} free "
                f"GPUs ({target_line.quantity} ordered, {allocated} allocated); cannot move "
                f"{gpus} there."
            }
        )
    target = Allocation.objects.filter(quota=locked_quota, line=target_line).first()
    if target is None:
        target = Allocation(gpus=0, priority=source.priority)
    history.attribute_to(source, by)
    history.attribute_to(target, by)
    if gpus == source.gpus:
        source.delete()
    else:
        source.gpus -= gpus
        source.allocated_by = by
        source.save()
    target.quota, target.line = locked_quota, target_line
    target.gpus += gpus
    target.allocated_by = by
    target.full_clean()
    target.validate_limits()
    target.save()
    return target


# ---------------------------------------------------------------------------------------------
# Selectors


def _total(queryset: QuerySet, expression: str) -> Subquery:
    """SUM of a correlated queryset's column as a scalar subquery (NULL when empty). A plain
    function call rather than an aggregate, so no GROUP BY is added (as querysets._count)."""
    summed = queryset.order_by().annotate(total=Func(F(expression), function="SUM"))
    return Subquery(summed.values("total"), output_field=models.IntegerField())


def allocations_with_availability(
    allocations: QuerySet[Allocation] | None = None,
) -> QuerySet[Allocation]:
    """Allocations annotated with when their GPUs are expected and how many arrived:

    expected_on / first_expected_on: the line's current / first quoted delivery date
    (stored on the line, through the line); received: GPUs of the line that
    arrived, handed out in priority order (see the module docstring); outstanding: GPUs
    still to come; past_period_end: GPUs are still to come and the expected date is after
    the quota period's end (None while the line has no quoted date)."""
    allocations = Allocation.objects.all() if allocations is None else allocations
    line = OrderLine.objects.filter(pk=OuterRef("line_id"))
    ahead = Allocation.objects.filter(line_id=OuterRef("line_id")).filter(
        Q(priority__lt=OuterRef("priority"))
        | Q(priority=OuterRef("priority"), pk__lt=OuterRef("pk"))
    )
    integer = models.IntegerField()
    return (
        allocations.annotate(
            expected_on=Subquery(
                line.values("current_delivery_date")[:1], output_field=models.DateField()
            ),
            first_expected_on=Subquery(
                line.values("baseline_delivery_date")[:1], output_field=models.DateField()
            ),
            line_received=Coalesce(
                _total(Delivery.objects.filter(line_id=OuterRef("line_id")), "quantity"), 0
            ),
            gpus_ahead=Coalesce(_total(ahead, "gpus"), 0),
        )
        .annotate(
            received=Least(
                Greatest(F("line_received") - F("gpus_ahead"), 0, output_field=integer),
                F("gpus"),
                output_field=integer,
            )
        )
        .annotate(
            outstanding=F("gpus") - F("received"),
            past_period_end=models.Case(
                models.When(expected_on__isnull=True, then=models.Value(None)),
                models.When(
                    Q(outstanding__gt=0, expected_on__gt=F("quota__period_end")), then=True
                ),
                default=False,
                output_field=models.BooleanField(null=True),
            ),
        )
    )


def quotas_with_usage(quotas: QuerySet[Quota] | None = None) -> QuerySet[Quota]:
    """Quotas annotated with allocated (GPUs promised under them, cancelled orders' left out:
    `COUNTS_AGAINST_QUOTA`), received (of those, GPUs that arrived), pending (allocated -
    received) and remaining (quota - allocated). One query whatever the number of quotas."""
    quotas = Quota.objects.all() if quotas is None else quotas
    under_quota = Allocation.objects.filter(COUNTS_AGAINST_QUOTA, quota_id=OuterRef("pk"))
    return quotas.annotate(
        allocated=Coalesce(_total(under_quota, "gpus"), 0),
        received=Coalesce(_total(allocations_with_availability(under_quota), "received"), 0),
    ).annotate(remaining=F("gpus") - F("allocated"), pending=F("allocated") - F("received"))


def lines_with_free_gpus(
    *, gpu_model_id: int, exclude_line_id: int | None = None
) -> QuerySet[OrderLine]:
    """Order lines of a GPU model with GPUs nobody is promised yet, where allocations can move
    to: annotated with allocated and free, with the stored schedule figures, the earliest
    expected first. Cancelled and fully received orders are left out."""
    allocated = Allocation.objects.filter(line_id=OuterRef("pk"))
    return (
        OrderLine.objects.filter(gpu_model_id=gpu_model_id)
        .exclude(pk=exclude_line_id)
        .exclude(order__status__in=[PurchaseOrder.Status.CANCELLED, PurchaseOrder.Status.RECEIVED])
        .annotate(allocated=Coalesce(_total(allocated, "gpus"), 0))
        .annotate(free=F("quantity") - F("allocated"))
        .filter(free__gt=0)
        .order_by(F("current_delivery_date").asc(nulls_last=True), "order__po_number")
    )


# ---------------------------------------------------------------------------------------------
# Telling team leads about slips


def team_notices_create(*, alerts: Sequence[tuple[int, int]]) -> int:
    """Note, for each slip alert (alert id, order id), the lead of every team with GPUs still
    to come on the lines it is about (the triggering quote's line, or every line for an
    order-level quote), if the lead may see the order (orders.permissions, as on the pages:
    a lead who sees only the orders they buy or watch hears of no other). One read when no
    team waits on those orders, else two reads and one write, whatever the number of alerts;
    unique (alert, team) makes rescans and concurrent scans harmless. Returns how many
    notices were new."""
    if not alerts:
        return 0
    waiting: dict[int, list[tuple[int, int, int, str]]] = defaultdict(list)
    for line_id, order_id, team_id, lead_id, email in (
        allocations_with_availability(
            Allocation.objects.filter(
                line__order_id__in={order_id for _, order_id in alerts},
                quota__team__lead__is_active=True,
            )
            .exclude(quota__team__lead__email="")
            .filter(may_see_order_q(user_path="quota__team__lead", order_path="line__order"))
        )
        .filter(outstanding__gt=0)
        .values_list(
            "line_id",
            "line__order_id",
            "quota__team_id",
            "quota__team__lead_id",
            "quota__team__lead__email",
        )
    ):
        waiting[order_id].append((line_id, team_id, lead_id, email))
    if not waiting:
        return 0
    quote_lines = SlipAlert.objects.filter(
        pk__in=[alert_id for alert_id, order_id in alerts if order_id in waiting]
    ).values_list("pk", "order_id", "quote__line_id")
    rows = {
        (alert_id, team_id): (lead_id, email)
        for alert_id, order_id, quote_line_id in quote_lines
        for line_id, team_id, lead_id, email in waiting[order_id]
        if quote_line_id in (None, line_id)
    }
    created = insert_ignoring_conflicts(
        TeamSlipNotice,
        columns=("alert_id", "team_id", "recipient_id", "recipient_email"),
        rows=[(alert_id, team_id, *lead) for (alert_id, team_id), lead in rows.items()],
        constants={"skipped_reason": "", "created_at": timezone.now()},
    )
    return len(created)


SKIPPED_NOT_LEAD = "recipient no longer leads the team, is inactive or has no email"
SKIPPED_NOTHING_WAITING = "the team has no GPUs still to come on the lines the alert is about"
SKIPPED_LEAD_NO_ACCESS = "the team lead may not see the order"

QuoteKey = tuple[date, int]  # (quoted_on, id): the order quotes were given in


@dataclass
class TeamSlip:
    """One allocation hit by a slip, as its team lead's digest shows it."""

    allocation: Allocation  # from allocations_with_availability()
    old_date: date | None  # what the line was expected on before the earliest alert's quote
    trigger: QuoteKey
    alerts: list[SlipAlert] = field(default_factory=list)

    @property
    def new_date(self) -> date | None:
        return self.allocation.expected_on

    @property
    def slip_days(self) -> int | None:
        if self.old_date is None or self.new_date is None:
            return None
        return (self.new_date - self.old_date).days

    @property
    def past_period_end(self) -> bool:
        return bool(self.allocation.past_period_end)

    @property
    def sorted_alerts(self) -> list[SlipAlert]:
        return sorted(self.alerts, key=lambda a: RANK[a.code])


@dataclass
class TeamBlock:
    """A team's slipped GPUs in one digest: one entry per allocation, however many alerts
    (rules, notices) are about it."""

    team: Team
    slips: dict[int, TeamSlip] = field(default_factory=dict)

    def add(self, slip: TeamSlip) -> None:
        known = self.slips.get(slip.allocation.pk)
        if known is None:
            self.slips[slip.allocation.pk] = slip
            return
        if slip.trigger < known.trigger:  # the earliest news gives the date they expected
            known.old_date, known.trigger = slip.old_date, slip.trigger
        known.alerts.extend(a for a in slip.alerts if a not in known.alerts)

    @property
    def sorted_slips(self) -> list[TeamSlip]:
        return sorted(
            self.slips.values(),
            key=lambda s: (s.allocation.quota.gpu_model.name, s.allocation.line.order.po_number),
        )


def team_slips(
    notices: Iterable[tuple[int, int, int, int | None]],
) -> tuple[dict[int, list[TeamSlip]], dict[int, str]]:
    """For pending team notices (id, alert id, team id, recipient id): the slips each one
    reports, and the reason each one that must not be sent is skipped (the recipient no
    longer leads the team, may no longer see the order, or nothing of the team's is waiting
    on those lines any more: moved away or received since). Five queries whatever the number
    of notices."""
    notices = list(notices)
    # Asked again at send time, as for buyers' notices: access may have changed since.
    visible = set(
        TeamSlipNotice.objects.filter(pk__in=[n[0] for n in notices])
        .filter(may_see_order_q(user_path="recipient", order_path="alert__order"))
        .values_list("pk", flat=True)
    )
    alerts = {
        a.pk: a
        for a in SlipAlert.objects.filter(pk__in={n[1] for n in notices}).select_related("quote")
    }
    teams = {
        t.pk: t for t in Team.objects.filter(pk__in={n[2] for n in notices}).select_related("lead")
    }
    order_ids = {a.order_id for a in alerts.values()}
    waiting: dict[tuple[int, int], list[Allocation]] = defaultdict(list)
    for allocation in allocations_with_availability(
        Allocation.objects.filter(quota__team_id__in=teams, line__order_id__in=order_ids)
    ).select_related("quota__team", "quota__gpu_model", "line__order__vendor", "line__gpu_model"):
        if allocation.outstanding > 0:
            waiting[(allocation.quota.team_id, allocation.line.order_id)].append(allocation)
    quotes: dict[int, list[tuple[QuoteKey, int | None, date]]] = defaultdict(list)
    for pk, order_id, line_id, quoted_on, delivery_date in (
        DeliveryQuote.objects.filter(order_id__in=order_ids)
        .order_by("quoted_on", "id")
        .values_list("id", "order_id", "line_id", "quoted_on", "delivery_date")
    ):
        quotes[order_id].append(((quoted_on, pk), line_id, delivery_date))

    slips: dict[int, list[TeamSlip]] = {}
    skipped: dict[int, str] = {}
    for notice_id, alert_id, team_id, recipient_id in notices:
        alert, team = alerts[alert_id], teams[team_id]
        if not alert.is_open:  # replaced or no longer true since the notice was noted
            skipped[notice_id] = SKIPPED_ALERT_CLOSED
            continue
        lead = team.lead
        if lead.pk != recipient_id or not lead.is_active or not lead.email:
            skipped[notice_id] = SKIPPED_NOT_LEAD
            continue
        if notice_id not in visible:
            skipped[notice_id] = SKIPPED_LEAD_NO_ACCESS
            continue
        trigger: QuoteKey = (alert.quote.quoted_on, alert.quote.pk)
        found = []
        for allocation in waiting.get((team_id, alert.order_id), ()):
            if alert.quote.line_id not in (None, allocation.line_id):
                continue
            before = [
                delivery_date
                for key, line_id, delivery_date in quotes[alert.order_id]
                if key < trigger and line_id in (None, allocation.line_id)
            ]
            old_date = before[-1] if before else None
            found.append(TeamSlip(allocation, old_date, trigger, [alert]))
        if found:
            slips[notice_id] = found
        else:
            skipped[notice_id] = SKIPPED_NOTHING_WAITING
    return slips, skipped
