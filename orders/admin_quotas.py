"""Admin for rationing: teams, quotas (with usage columns), allocations (also inline on the
order line page), moving allocations to an earlier order, and the quota usage page.

Thin: every allocation change goes through orders.quotas (row locks, limits re-summed under
them); forms check the same limits without locks first, so a person sees the message on the
form rather than an error page. Lists read annotated querysets: a fixed number of queries.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, F, QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from orders import permissions, quotas
from orders.admin_history import ReadOnlyHistoryAdmin
from orders.admin_input import SafeAdminMixin
from orders.admin_scope import OrderScopedAdmin, OrderScopedInline
from orders.models import Allocation, OrderLine, PurchaseOrder, Quota, Team
from orders.quotas import allocations_with_availability, lines_with_free_gpus, quotas_with_usage


class LimitCheckedAllocationForm(forms.ModelForm):
    """Shows the line and quota limits on the form (unlocked: the service re-checks them
    with the rows locked when saving)."""

    def _post_clean(self) -> None:
        super()._post_clean()
        if self.errors:
            return
        try:
            self.instance.validate_limits()
        except ValidationError as error:
            self._update_errors(error)


class AllocationInlineFormSet(BaseInlineFormSet):
    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return
        # The rows of this page change together: each is checked against what the others
        # will hold after the save, not what they hold now (a cut and a raise in one save).
        kept = [
            form
            for form in self.forms
            if form.cleaned_data.get("gpus") and not self._should_delete_form(form)
        ]
        total = sum(form.cleaned_data["gpus"] for form in kept)
        for form in kept:
            if form.has_changed():
                others = total - form.cleaned_data["gpus"]
                try:
                    form.instance.validate_limits(others_on_line=others)
                except ValidationError as error:
                    form.add_error(None, error)


class AllocationInline(OrderScopedInline, admin.TabularInline):
    """GPUs of this line promised to teams. Saved through orders.quotas.allocation_set."""

    model = Allocation
    parent_order_path = "order"  # the parent is the order line
    formset = AllocationInlineFormSet
    fields = ["quota", "gpus", "priority", "allocated_by", "updated_at"]
    readonly_fields = ["allocated_by", "updated_at"]
    extra = 0
    verbose_name_plural = "allocations to teams (priority 1 receives first)"

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        return (
            super()
            .get_queryset(request)
            .select_related("quota__team", "quota__gpu_model", "allocated_by")
        )

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "quota":
            object_id = request.resolver_match.kwargs.get("object_id")
            line = OrderLine.objects.filter(pk=object_id).values("gpu_model_id")
            kwargs["queryset"] = Quota.objects.filter(gpu_model_id__in=line).select_related(
                "team", "gpu_model"
            )
        return super().formfield_for_foreignkey(db_field, request, **kwargs)


class OrderLineAllocationsMixin:
    """For the order line admin: its allocations inline, saved through the service."""

    def get_inlines(self, request: HttpRequest, obj: Any) -> list[Any]:
        inlines = list(super().get_inlines(request, obj))  # type: ignore[misc]
        # Allocations need a saved line (its GPU model and quantity).
        return [*inlines, AllocationInline] if obj is not None else inlines

    def save_formset(self, request: HttpRequest, form: Any, formset: Any, change: bool) -> None:
        if formset.model is not Allocation:
            super().save_formset(request, form, formset, change)  # type: ignore[misc]
            return
        line = form.instance
        formset.save(commit=False)  # only to record what changed, for the admin's history
        saved = {a.pk: a for a in Allocation.objects.filter(line=line).select_related("quota")}
        steps: list[tuple[int, Quota, int, int | None]] = []  # change, quota, GPUs, priority
        for row in formset.forms:
            before = saved.get(row.instance.pk)
            if formset._should_delete_form(row):
                if before is not None:
                    steps.append((-before.gpus, before.quota, 0, None))
                continue
            if not row.has_changed():
                continue
            quota, gpus = row.cleaned_data["quota"], row.cleaned_data["gpus"]
            if before is not None and before.quota_id != quota.pk:
                steps.append((-before.gpus, before.quota, 0, None))
                before = None
            held = before.gpus if before is not None else 0
            steps.append((gpus - held, quota, gpus, row.cleaned_data["priority"]))
        # Cuts first, so GPUs freed in this save are free for the raises in it.
        for _, quota, gpus, priority in sorted(steps, key=lambda step: step[0]):
            quotas.allocation_set(
                quota=quota, line=line, gpus=gpus, priority=priority, by=request.user
            )


@admin.register(Team)
class TeamAdmin(SafeAdminMixin, admin.ModelAdmin):
    list_display = ["name", "lead", "lead_email", "member_count", "quota_count"]
    list_select_related = ["lead"]
    search_fields = ["name", "lead__username", "lead__email"]
    autocomplete_fields = ["lead"]
    filter_horizontal = ["members"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Team]:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_members=Count("members", distinct=True), n_quotas=Count("quotas", distinct=True)
            )
            # A grouped query drops Meta.ordering; the autocomplete pages through this.
            .order_by("name")
        )

    @admin.display(description="lead's email", ordering="lead__email")
    def lead_email(self, team: Team) -> str:
        return team.lead.email or "—"

    @admin.display(description="members", ordering="n_members")
    def member_count(self, team: Any) -> int:
        return team.n_members

    @admin.display(description="quotas", ordering="n_quotas")
    def quota_count(self, team: Any) -> int:
        return team.n_quotas


class QuotaAllocationInline(admin.TabularInline):
    """What is promised under the quota, read-only here: change it on the order line page."""

    model = Allocation
    fields = ["line", "gpus", "priority", "expected_on", "received", "past_period_end"]
    readonly_fields = fields
    extra = 0
    can_delete = False
    verbose_name_plural = "allocations (change them on the order line)"

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        # The quota's figures count every allocation; the rows name orders, so only those
        # of orders the user may see are listed.
        visible = permissions.scoped(
            super().get_queryset(request), request.user, path="line__order"
        )
        return allocations_with_availability(visible).select_related(
            "line__order", "line__gpu_model", "quota"
        )

    @admin.display(description="expected on")
    def expected_on(self, allocation: Any) -> Any:
        return allocation.expected_on or "—"

    @admin.display(description="received")
    def received(self, allocation: Any) -> int:
        return allocation.received

    @admin.display(description="past period end", boolean=True)
    def past_period_end(self, allocation: Any) -> bool | None:
        return allocation.past_period_end


@admin.register(Quota)
class QuotaAdmin(SafeAdminMixin, admin.ModelAdmin):
    list_display = [
        "team",
        "gpu_model",
        "period_start",
        "period_end",
        "gpus",
        "allocated",
        "received",
        "pending",
        "remaining",
    ]
    list_filter = [("team", admin.RelatedOnlyFieldListFilter), "gpu_model"]
    list_select_related = ["team", "gpu_model"]
    search_fields = ["team__name", "gpu_model__name"]
    autocomplete_fields = ["team", "gpu_model"]
    date_hierarchy = "period_start"
    inlines = [QuotaAllocationInline]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Quota]:
        return quotas_with_usage(super().get_queryset(request))

    @admin.display(description="allocated", ordering="allocated")
    def allocated(self, quota: Any) -> int:
        return quota.allocated

    @admin.display(description="received", ordering="received")
    def received(self, quota: Any) -> int:
        return quota.received

    @admin.display(description="allocated, not received", ordering="pending")
    def pending(self, quota: Any) -> int:
        return quota.pending

    @admin.display(description="remaining", ordering="remaining")
    def remaining(self, quota: Any) -> int:
        return quota.remaining

    def save_model(self, request: HttpRequest, obj: Quota, form: Any, change: bool) -> None:
        quotas.quota_save(quota=obj)

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.usage_view)
        return [path("usage/", view, name="orders_quota_usage"), *super().get_urls()]

    def usage_view(self, request: HttpRequest) -> HttpResponse:
        """Per team and GPU model: each quota period with what is allocated, received and
        remaining, and when the allocated GPUs are expected. Two queries."""
        if not (
            request.user.has_perm("orders.view_quota")
            and request.user.has_perm("orders.view_allocation")
        ):
            raise PermissionDenied
        by_quota: dict[int, list[Any]] = defaultdict(list)
        # Quota figures are team totals over every allocation; the allocation rows name
        # orders, so only those of orders the user may see are listed.
        visible = permissions.scoped(Allocation.objects.all(), request.user, path="line__order")
        for allocation in (
            allocations_with_availability(visible)
            .select_related("line__order__vendor")
            .order_by(F("expected_on").asc(nulls_last=True), "line__order__po_number")
        ):
            by_quota[allocation.quota_id].append(allocation)
        teams: dict[int, dict[str, Any]] = {}
        for quota in quotas_with_usage().select_related("team__lead", "gpu_model"):
            quota.allocation_list = by_quota.get(quota.pk, [])
            team = teams.setdefault(quota.team_id, {"team": quota.team, "quotas": []})
            team["quotas"].append(quota)
        context = {
            **self.admin_site.each_context(request),
            "title": "Quota usage",
            "teams": list(teams.values()),
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/orders/quota_usage.html", context)


class PastPeriodEndFilter(admin.SimpleListFilter):
    title = "past the quota period's end"
    parameter_name = "past_period_end"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Yes: GPUs still to come after the period ends"), ("no", "No")]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any] | None:
        if self.value() in ("yes", "no"):
            return queryset.filter(past_period_end=self.value() == "yes")
        return None


class MoveForm(forms.Form):
    to_line = forms.ModelChoiceField(
        queryset=OrderLine.objects.none(),
        label="Move to",
        help_text="Lines of the same GPU model with free GPUs, earliest expected first.",
    )
    # No maximum here: the service's message names the team, the order and the numbers.
    gpus = forms.IntegerField(label="GPUs to move", min_value=1)

    def __init__(self, *args: Any, allocation: Allocation, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["to_line"].queryset = lines_with_free_gpus(
            gpu_model_id=allocation.line.gpu_model_id, exclude_line_id=allocation.line_id
        ).select_related("order__vendor")
        self.fields["to_line"].label_from_instance = _line_label
        self.fields["gpus"].initial = allocation.gpus


def _line_label(line: Any) -> str:
    expected = line.current_delivery_date.isoformat() if line.current_delivery_date else "no date"
    return (
        f"{line.order.po_number} ({line.order.vendor}): {line.free} of {line.quantity} free, "
        f"expected {expected}"
    )


@admin.register(Allocation)
class AllocationAdmin(SafeAdminMixin, OrderScopedAdmin, ReadOnlyHistoryAdmin):
    form = LimitCheckedAllocationForm
    order_path = "line__order"
    list_display = [
        "team",
        "gpu_model",
        "order",
        "gpus",
        "priority",
        "expected_on",
        "received",
        "outstanding",
        "period_end",
        "past_period_end",
        "move_link",
    ]
    list_filter = [
        ("quota__team", admin.RelatedOnlyFieldListFilter),
        "quota__gpu_model",
        PastPeriodEndFilter,
    ]
    list_select_related = ["quota__team", "quota__gpu_model", "line__order", "line__gpu_model"]
    search_fields = ["quota__team__name", "line__order__po_number"]
    autocomplete_fields = ["quota", "line"]
    fields = ["quota", "line", "gpus", "priority", "allocated_by", "updated_at"]
    actions = ["move_to_earlier_order"]

    def get_queryset(self, request: HttpRequest) -> QuerySet[Allocation]:
        return allocations_with_availability(super().get_queryset(request))

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        # Another quota or line is another allocation: remove this one, or move it.
        return (
            ["quota", "line", "allocated_by", "updated_at"]
            if obj
            else ["allocated_by", "updated_at"]
        )

    @admin.display(ordering="quota__team__name")
    def team(self, allocation: Allocation) -> Team:
        return allocation.quota.team

    @admin.display(description="GPU model", ordering="quota__gpu_model__name")
    def gpu_model(self, allocation: Allocation) -> Any:
        return allocation.quota.gpu_model

    @admin.display(description="order", ordering="line__order__po_number")
    def order(self, allocation: Allocation) -> PurchaseOrder:
        return allocation.line.order

    @admin.display(description="expected on", ordering="expected_on")
    def expected_on(self, allocation: Any) -> Any:
        return allocation.expected_on

    @admin.display(description="received", ordering="received")
    def received(self, allocation: Any) -> int:
        return allocation.received

    @admin.display(description="still to come", ordering="outstanding")
    def outstanding(self, allocation: Any) -> int:
        return allocation.outstanding

    @admin.display(description="period ends", ordering="quota__period_end")
    def period_end(self, allocation: Allocation) -> Any:
        return allocation.quota.period_end

    @admin.display(description="past period end", boolean=True, ordering="past_period_end")
    def past_period_end(self, allocation: Any) -> bool | None:
        return allocation.past_period_end

    @admin.display(description="")
    def move_link(self, allocation: Allocation) -> str:
        url = reverse("admin:orders_allocation_move", args=[allocation.pk])
        return format_html('<a href="{}">Move…</a>', url)

    def save_model(self, request: HttpRequest, obj: Allocation, form: Any, change: bool) -> None:
        saved = quotas.allocation_set(
            quota=obj.quota, line=obj.line, gpus=obj.gpus, priority=obj.priority, by=request.user
        )
        obj.pk, obj.allocated_by, obj.updated_at = saved.pk, saved.allocated_by, saved.updated_at

    def delete_model(self, request: HttpRequest, obj: Allocation) -> None:
        quotas.allocation_set(quota=obj.quota, line=obj.line, gpus=0, by=request.user)

    def delete_queryset(self, request: HttpRequest, queryset: QuerySet[Allocation]) -> None:
        for allocation in queryset.select_related("quota", "line"):
            self.delete_model(request, allocation)

    @admin.action(description="Move allocations to an earlier order", permissions=["change"])
    def move_to_earlier_order(
        self, request: HttpRequest, queryset: QuerySet[Allocation]
    ) -> HttpResponse | None:
        pks = list(queryset.values_list("pk", flat=True)[:2])
        if len(pks) != 1:
            self.message_user(request, "Select one allocation to move at a time.", messages.WARNING)
            return None
        return HttpResponseRedirect(reverse("admin:orders_allocation_move", args=pks))

    def get_urls(self) -> list[Any]:
        view = self.admin_site.admin_view(self.move_view)
        return [
            path("<int:object_id>/move/", view, name="orders_allocation_move"),
            *super().get_urls(),
        ]

    def move_view(self, request: HttpRequest, object_id: int) -> HttpResponse:
        """Move GPUs of one allocation to another order line with free GPUs: one atomic
        service call; on error nothing changes and the form says why."""
        visible = permissions.scoped(Allocation.objects.all(), request.user, path="line__order")
        allocation = get_object_or_404(
            allocations_with_availability(visible).select_related(
                "quota__team", "quota__gpu_model", "line__order__vendor", "line__gpu_model"
            ),
            pk=object_id,
        )
        if not self.has_change_permission(request, allocation):
            raise PermissionDenied
        form = MoveForm(request.POST or None, allocation=allocation)
        to_line = form.fields["to_line"]
        to_line.queryset = permissions.scoped(
            to_line.queryset, request.user, path="order", change=True
        )
        if request.method == "POST" and form.is_valid():
            try:
                moved = quotas.allocations_move(
                    quota=allocation.quota,
                    from_line=allocation.line,
                    to_line=form.cleaned_data["to_line"],
                    gpus=form.cleaned_data["gpus"],
                    by=request.user,
                )
            except ValidationError as error:
                for field, problems in error.message_dict.items():
                    form.add_error(field if field in form.fields else None, problems)
            else:
                self.message_user(
                    request,
                    f"Moved {form.cleaned_data['gpus']} GPUs of {allocation.quota.team} from "
                    f"{allocation.line.order} to {moved.line.order}.",
                    messages.SUCCESS,
                )
                return HttpResponseRedirect(reverse("admin:orders_allocation_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "title": f"Move GPUs of {allocation.quota.team} to an earlier order",
            "allocation": allocation,
            "form": form,
            "opts": self.model._meta,
        }
        return TemplateResponse(request, "admin/orders/allocation_move.html", context)
