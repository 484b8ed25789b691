"""Rationing: the services that promise GPUs on order to teams under quotas, and the
selectors that say when those GPUs arrive.

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

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.db import models, transaction
from django.db.models import F, Func, OuterRef, Q, QuerySet, Subquery, Sum
from django.db.models.functions import Coalesce, Greatest, Least

from orders.models import (
    Allocation,
    Delivery,
    OrderLine,
    PurchaseOrder,
    Quota,
    Team,
)

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
    (OrderLine.objects.with_lead_times(), through the line); received: GPUs of the line that
    arrived, handed out in priority order (see the module docstring); outstanding: GPUs
    still to come; past_period_end: GPUs are still to come and the expected date is after
    the quota period's end (None while the line has no quoted date)."""
    allocations = Allocation.objects.all() if allocations is None else allocations
    line = OrderLine.objects.with_lead_times().filter(pk=OuterRef("line_id"))
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
    """Quotas annotated with allocated (GPUs promised under them), received (of those, GPUs
    that arrived), pending (allocated - received) and remaining (quota - allocated). One
    query whatever the number of quotas."""
    quotas = Quota.objects.all() if quotas is None else quotas
    under_quota = Allocation.objects.filter(quota_id=OuterRef("pk"))
    return quotas.annotate(
        allocated=Coalesce(_total(under_quota, "gpus"), 0),
        received=Coalesce(_total(allocations_with_availability(under_quota), "received"), 0),
    ).annotate(remaining=F("gpus") - F("allocated"), pending=F("allocated") - F("received"))


def lines_with_free_gpus(
    *, gpu_model_id: int, exclude_line_id: int | None = None
) -> QuerySet[OrderLine]:
    """Order lines of a GPU model with GPUs nobody is promised yet, where allocations can move
    to: annotated with allocated, free and the with_lead_times() figures, the earliest
    expected first. Cancelled and fully received orders are left out."""
    allocated = Allocation.objects.filter(line_id=OuterRef("pk"))
    return (
        OrderLine.objects.with_lead_times()
        .filter(gpu_model_id=gpu_model_id)
        .exclude(pk=exclude_line_id)
        .exclude(order__status__in=[PurchaseOrder.Status.CANCELLED, PurchaseOrder.Status.RECEIVED])
        .annotate(allocated=Coalesce(_total(allocated, "gpus"), 0))
        .annotate(free=F("quantity") - F("allocated"))
        .filter(free__gt=0)
        .order_by(F("current_delivery_date").asc(nulls_last=True), "order__po_number")
    )
