"""Quotas: every limit with a bad value (a message naming the numbers, nothing saved), moving
allocations, expected availability, slip emails to team leads, the admin and the CSV export."""

from __future__ import annotations

import csv
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from io import StringIO
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command
from django.db import IntegrityError, connection, transaction
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from orders import alerts, notifications, quotas, services
from orders.demo import load_demo
from orders.models import (
    AlertNotice,
    Allocation,
    GpuModel,
    OrderLine,
    PurchaseOrder,
    Quota,
    SlipAlert,
    Team,
    TeamSlipNotice,
)
from orders.quotas import allocation_set, allocations_move, quota_save
from orders.roles import Role
from tests.conftest import run_at_once
from tests.factories import (
    GpuModelFactory,
    OrderLineFactory,
    PurchaseOrderFactory,
    QuotaFactory,
    TeamFactory,
    UserFactory,
)
from tests.unit.test_admin import _add_inline_row, _form_data

pytestmark = pytest.mark.django_db

D = date.fromisoformat
PLACED = D("2023-04-14")


@dataclass
class World:
    a100: GpuModel
    a10: GpuModel
    big: OrderLine  # PO-2023-0412: 384 A100, bought by alice
    small: OrderLine  # PO-2023-0405: 128 A100 ...
    a10_line: OrderLine  # ... and 40 A10 on the same order
    llm: Quota  # LLM pre-training (carol): 384 A100 for 2023-Q3
    vision: Quota  # Vision (carol too): 100 A100 for 2023-H2
    research: Quota  # Research (dave): 300 A100 for 2023-H2
    inference: Quota  # Inference (bob): 96 A10 for 2023-H1


@pytest.fixture
def w() -> World:
    a100 = GpuModelFactory(name="A100 80GB SXM")
    a10 = GpuModelFactory(name="A10", memory_gb=24)
    alice, bob, carol, dave = (UserFactory(username=n) for n in ("alice", "bob", "carol", "dave"))
    big_order = PurchaseOrderFactory(po_number="PO-2023-0412", buyer=alice, placed_on=PLACED)
    small_order = PurchaseOrderFactory(po_number="PO-2023-0405", buyer=alice, placed_on=PLACED)
    h2 = {"period_start": D("2023-07-01"), "period_end": D("2023-12-31")}
    return World(
        a100=a100,
        a10=a10,
        big=OrderLineFactory(order=big_order, gpu_model=a100, quantity=384),
        small=OrderLineFactory(order=small_order, gpu_model=a100, quantity=128),
        a10_line=OrderLineFactory(order=small_order, gpu_model=a10, quantity=40),
        llm=QuotaFactory(
            team=TeamFactory(name="LLM pre-training", lead=carol),
            gpu_model=a100,
            period_start=D("2023-07-01"),
            period_end=D("2023-09-30"),
            gpus=384,
        ),
        vision=QuotaFactory(team=TeamFactory(name="Vision", lead=carol), gpus=100, **h2),
        research=QuotaFactory(team=TeamFactory(name="Research", lead=dave), gpus=300, **h2),
        inference=QuotaFactory(
            team=TeamFactory(name="Inference", lead=bob),
            gpu_model=a10,
            period_start=D("2023-01-01"),
            period_end=D("2023-06-30"),
            gpus=96,
        ),
    )


def _allocations() -> list[tuple[int, int, int, int]]:
    return sorted(Allocation.objects.values_list("quota_id", "line_id", "gpus", "priority"))


def _quotas() -> list[tuple[Any, ...]]:
    return sorted(
        Quota.objects.values_list("team_id", "gpu_model_id", "period_start", "period_end", "gpus")
    )


def _refused(call: Callable[[], object], *says: str) -> ValidationError:
    """`call` raises a ValidationError saying each of `says`, and changes no row."""
    before = (_allocations(), _quotas())
    with pytest.raises(ValidationError) as excinfo:
        call()
    text = " ".join(excinfo.value.messages)
    for fragment in says:
        assert fragment in text, text
    assert (_allocations(), _quotas()) == before
    return excinfo.value


# --- Limits -------------------------------------------------------------------------------


@dataclass
class Limit:
    id: str
    setup: Callable[[World], object]
    call: Callable[[World], object]
    says: str


def _nothing(w: World) -> None:
    return None


def _cancel(order: PurchaseOrder) -> None:
    order.status = PurchaseOrder.Status.CANCELLED
    order.save()


ALLOCATION_LIMITS = [
    Limit(
        "line oversubscribed",
        lambda w: allocation_set(quota=w.research, line=w.big, gpus=300),
        lambda w: allocation_set(quota=w.llm, line=w.big, gpus=100),
        "Line PO-2023-0412 (A100 80GB SXM) has 384 GPUs; 300 are already allocated elsewhere, "
        "so at most 84 for LLM pre-training, not 100.",
    ),
    Limit(
        "raising an allocation past the line",
        lambda w: (
            allocation_set(quota=w.research, line=w.big, gpus=300),
            allocation_set(quota=w.llm, line=w.big, gpus=50),
        ),
        lambda w: allocation_set(quota=w.llm, line=w.big, gpus=100),
        "300 are already allocated elsewhere, so at most 84 for LLM pre-training, not 100.",
    ),
    Limit(
        "quota exceeded",
        lambda w: allocation_set(quota=w.research, line=w.big, gpus=250),
        lambda w: allocation_set(quota=w.research, line=w.small, gpus=100),
        "Research's quota of A100 80GB SXM for 2023-07-01 to 2023-12-31 is 300 GPUs; 250 are "
        "already allocated on other lines, so at most 50 here, not 100.",
    ),
    Limit(
        "wrong GPU model",
        _nothing,
        lambda w: allocation_set(quota=w.llm, line=w.a10_line, gpus=8),
        "Line PO-2023-0405 is for A10, but this quota of LLM pre-training is for A100 80GB SXM.",
    ),
    Limit(
        "negative number of GPUs",
        _nothing,
        lambda w: allocation_set(quota=w.llm, line=w.big, gpus=-5),
        "Number of GPUs cannot be negative (-5).",
    ),
    Limit(
        "priority zero",
        _nothing,
        lambda w: allocation_set(quota=w.llm, line=w.big, gpus=8, priority=0),
        "Priority must be at least 1, not 0.",
    ),
    Limit(
        "GPUs of a cancelled order",
        lambda w: _cancel(w.small.order),
        lambda w: allocation_set(quota=w.llm, line=w.small, gpus=8),
        "PO-2023-0405 is cancelled: its GPUs cannot be promised to a team.",
    ),
]


@pytest.mark.parametrize("limit", ALLOCATION_LIMITS, ids=lambda c: c.id)
def test_allocation_limits_refuse_a_bad_value_and_save_nothing(w: World, limit: Limit) -> None:
    limit.setup(w)
    _refused(lambda: limit.call(w), limit.says)


def _quota(w: World, **fields: Any) -> Quota:
    values = {
        "team": w.llm.team,
        "gpu_model": w.a100,
        "period_start": D("2023-10-01"),
        "period_end": D("2024-03-31"),
        "gpus": 100,
    }
    return Quota(**(values | fields))


def _saved(w: World, quota: Quota, **changes: Any) -> Callable[[], Quota]:
    for name, value in changes.items():
        setattr(quota, name, value)
    return lambda: quota_save(quota=quota)


QUOTA_LIMITS = [
    Limit(
        "overlapping periods",
        _nothing,
        lambda w: quota_save(quota=_quota(w, period_start=D("2023-09-01"))),
        "LLM pre-training already has a quota of 384 A100 80GB SXM for 2023-07-01 to "
        "2023-09-30, which overlaps 2023-09-01 to 2024-03-31; quotas of one team and GPU "
        "model cannot overlap.",
    ),
    Limit(
        "overlapping by one day",
        _nothing,
        lambda w: quota_save(quota=_quota(w, period_start=D("2023-09-30"))),
        "which overlaps 2023-09-30 to 2024-03-31",
    ),
    Limit(
        "start after end",
        _nothing,
        lambda w: quota_save(
            quota=_quota(w, period_start=D("2024-07-01"), period_end=D("2024-06-30"))
        ),
        "Period end 2024-06-30 is before its start 2024-07-01.",
    ),
    Limit(
        "zero GPUs",
        _nothing,
        lambda w: quota_save(quota=_quota(w, period_start=D("2024-01-01"), gpus=0)),
        "A quota must be at least 1 GPU, not 0.",
    ),
    Limit(
        "negative GPUs",
        _nothing,
        lambda w: quota_save(quota=_quota(w, period_start=D("2024-01-01"), gpus=-10)),
        "A quota must be at least 1 GPU, not -10.",
    ),
    Limit(
        "cut below what is allocated",
        lambda w: allocation_set(quota=w.research, line=w.big, gpus=250),
        lambda w: _saved(w, w.research, gpus=200)(),
        "Quota of 200 GPUs is below the 250 already allocated under it; reduce or move "
        "allocations first.",
    ),
    Limit(
        "GPU model changed under allocations",
        lambda w: allocation_set(quota=w.research, line=w.big, gpus=250),
        lambda w: _saved(w, w.research, gpu_model=w.a10)(),
        "This quota has allocations of another GPU model than A10",
    ),
]


@pytest.mark.parametrize("limit", QUOTA_LIMITS, ids=lambda c: c.id)
def test_quota_limits_refuse_a_bad_value_and_save_nothing(w: World, limit: Limit) -> None:
    limit.setup(w)
    _refused(lambda: limit.call(w), limit.says)


def test_a_quota_right_after_another_and_for_another_gpu_model_is_fine(w: World) -> None:
    quota_save(quota=_quota(w))  # 2023-10-01, the day after the Q3 quota ends
    quota_save(quota=_quota(w, gpu_model=w.a10, period_start=D("2023-07-01")))
    assert Quota.objects.filter(team=w.llm.team).count() == 3


def test_an_order_line_cannot_drop_below_what_teams_are_promised(w: World) -> None:
    allocation_set(quota=w.research, line=w.big, gpus=250)
    w.big.quantity = 200
    with pytest.raises(ValidationError, match="Quantity 200 is below the 250 GPUs allocated"):
        w.big.full_clean()
    assert OrderLine.objects.get(pk=w.big.pk).quantity == 384


def test_a_team_lead_needs_an_email_address(w: World) -> None:
    team = Team(name="Speech", lead=UserFactory(username="noemail", email=""))
    with pytest.raises(ValidationError, match="Team lead noemail has no email address"):
        team.full_clean()


BAD_ROWS: list[tuple[str, Callable[[World], object]]] = [
    ("allocation of 0", lambda w: Allocation.objects.create(quota=w.llm, line=w.big, gpus=0)),
    (
        "priority 0",
        lambda w: Allocation.objects.create(quota=w.llm, line=w.big, gpus=1, priority=0),
    ),
    (
        "two allocations of one quota on one line",
        lambda w: [Allocation.objects.create(quota=w.llm, line=w.big, gpus=1) for _ in "12"],
    ),
    ("quota of 0", lambda w: _quota(w, period_start=D("2024-01-01"), gpus=0).save()),
    (
        "quota ending before it starts",
        lambda w: _quota(w, period_start=D("2024-07-01"), period_end=D("2024-06-30")).save(),
    ),
    (
        "two quotas starting the same day",
        lambda w: _quota(w, period_start=w.llm.period_start).save(),
    ),
    ("team without a name", lambda w: Team.objects.create(name="", lead=w.llm.team.lead)),
    ("team name twice", lambda w: Team.objects.create(name="vision", lead=w.llm.team.lead)),
]


@pytest.mark.parametrize(("what", "row"), BAD_ROWS, ids=[r[0] for r in BAD_ROWS])
def test_the_database_refuses_bad_rows_when_validation_is_bypassed(
    w: World, what: str, row: Callable[[World], object]
) -> None:
    before = (_allocations(), _quotas(), Team.objects.count())
    with pytest.raises(IntegrityError), transaction.atomic():
        row(w)
    assert (_allocations(), _quotas(), Team.objects.count()) == before


def test_allocation_set_creates_changes_and_removes(w: World) -> None:
    manager = UserFactory(username="manager")
    created = allocation_set(quota=w.llm, line=w.big, gpus=300, priority=2, by=manager)
    assert (created.gpus, created.priority, created.allocated_by) == (300, 2, manager)
    changed = allocation_set(quota=w.llm, line=w.big, gpus=384)
    assert (changed.pk, changed.gpus, changed.priority) == (created.pk, 384, 2)
    assert allocation_set(quota=w.llm, line=w.big, gpus=0) is None
    assert not Allocation.objects.exists()
    assert allocation_set(quota=w.llm, line=w.big, gpus=0) is None  # nothing to remove


# --- Moving allocations -------------------------------------------------------------------


@pytest.fixture
def slipping(w: World) -> World:
    """LLM pre-training waits for 288 GPUs of PO-2023-0412; PO-2023-0405 has 32 free."""
    allocation_set(quota=w.llm, line=w.big, gpus=288, priority=1)
    allocation_set(quota=w.research, line=w.small, gpus=96)
    return w


def test_move_part_of_an_allocation_to_an_earlier_order(slipping: World) -> None:
    w = slipping
    moved = allocations_move(quota=w.llm, from_line=w.big, to_line=w.small, gpus=32)
    assert (moved.line, moved.gpus, moved.priority) == (w.small, 32, 1)
    assert _allocations() == sorted(
        [
            (w.llm.pk, w.big.pk, 256, 1),
            (w.llm.pk, w.small.pk, 32, 1),
            (w.research.pk, w.small.pk, 96, 10),
        ]
    )
    assert quotas.quotas_with_usage().get(pk=w.llm.pk).allocated == 288  # same quota use


def test_moving_everything_removes_the_old_allocation(slipping: World) -> None:
    w = slipping
    allocation_set(quota=w.research, line=w.small, gpus=0)
    allocations_move(quota=w.llm, from_line=w.big, to_line=w.small, gpus=128)
    allocations_move(quota=w.llm, from_line=w.small, to_line=w.big, gpus=128)
    assert _allocations() == [(w.llm.pk, w.big.pk, 288, 1)]


MOVES = [
    Limit(
        "more than the target has free",
        _nothing,
        lambda w: allocations_move(quota=w.llm, from_line=w.big, to_line=w.small, gpus=64),
        "PO-2023-0405 (A100 80GB SXM) has 32 free GPUs (128 ordered, 96 allocated); cannot "
        "move 64 there.",
    ),
    Limit(
        "more than the team has there",
        lambda w: allocation_set(quota=w.research, line=w.small, gpus=0),
        lambda w: allocations_move(quota=w.llm, from_line=w.big, to_line=w.small, gpus=300),
        "LLM pre-training has 288 GPUs allocated on PO-2023-0412 under this quota; cannot "
        "move 300.",
    ),
    Limit(
        "nothing to move from that line",
        _nothing,
        lambda w: allocations_move(quota=w.vision, from_line=w.big, to_line=w.small, gpus=1),
        "Vision has 0 GPUs allocated on PO-2023-0412 under this quota; cannot move 1.",
    ),
    Limit(
        "zero GPUs",
        _nothing,
        lambda w: allocations_move(quota=w.llm, from_line=w.big, to_line=w.small, gpus=0),
        "Move at least 1 GPU, not 0.",
    ),
    Limit(
        "onto the same line",
        _nothing,
        lambda w: allocations_move(quota=w.llm, from_line=w.big, to_line=w.big, gpus=1),
        "Pick another order line than the one to move from.",
    ),
    # These two fail after the old allocation was already cut inside the service: the whole
    # move is one transaction, so the cut is undone.
    Limit(
        "to a line of another GPU model",
        _nothing,
        lambda w: allocations_move(quota=w.llm, from_line=w.big, to_line=w.a10_line, gpus=8),
        "Line PO-2023-0405 is for A10, but this quota of LLM pre-training is for A100 80GB SXM.",
    ),
    Limit(
        "to a cancelled order",
        lambda w: _cancel(w.small.order),
        lambda w: allocations_move(quota=w.llm, from_line=w.big, to_line=w.small, gpus=8),
        "PO-2023-0405 is cancelled",
    ),
]


@pytest.mark.parametrize("move", MOVES, ids=lambda c: c.id)
def test_a_failing_move_changes_nothing(slipping: World, move: Limit) -> None:
    move.setup(slipping)
    _refused(lambda: move.call(slipping), move.says)


# --- Expected availability ----------------------------------------------------------------


def _receive(line: OrderLine, quantity: int, on: str = "2023-08-01") -> None:
    services.delivery_record(line=line, quantity=quantity, delivered_on=D(on))


def _availability() -> dict[str, tuple[Any, ...]]:
    return {
        a.quota.team.name: (a.gpus, a.expected_on, a.received, a.outstanding, a.past_period_end)
        for a in quotas.allocations_with_availability().select_related("quota__team")
    }


def test_received_gpus_go_to_allocations_in_priority_order_then_oldest_first(w: World) -> None:
    allocation_set(quota=w.llm, line=w.big, gpus=200, priority=2)
    allocation_set(quota=w.research, line=w.big, gpus=100, priority=1)
    allocation_set(quota=w.vision, line=w.big, gpus=84, priority=2)  # same priority, newer
    services.quote_add(order=w.big.order, quoted_on=PLACED, delivery_date=D("2023-05-15"))
    services.quote_add(order=w.big.order, quoted_on=D("2023-06-01"), delivery_date=D("2023-12-15"))
    assert _availability() == {
        "Research": (100, D("2023-12-15"), 0, 100, False),
        "LLM pre-training": (200, D("2023-12-15"), 0, 200, True),  # Q3 quota ends 2023-09-30
        "Vision": (84, D("2023-12-15"), 0, 84, False),
    }

    _receive(w.big, 250)
    assert _availability() == {
        "Research": (100, D("2023-12-15"), 100, 0, False),
        "LLM pre-training": (200, D("2023-12-15"), 150, 50, True),
        "Vision": (84, D("2023-12-15"), 0, 84, False),
    }

    _receive(w.big, 134)
    assert {team: a[2:] for team, a in _availability().items()} == {
        "Research": (100, 0, False),
        "LLM pre-training": (200, 0, False),  # all here: nothing comes after the period
        "Vision": (84, 0, False),
    }


def test_expected_on_is_the_lines_current_quoted_date(w: World) -> None:
    allocation_set(quota=w.llm, line=w.small, gpus=100)
    allocation_set(quota=w.inference, line=w.a10_line, gpus=40)
    assert _availability()["LLM pre-training"][1:] == (None, 0, 100, None)  # not quoted yet

    order = w.small.order
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-05-15"))
    services.quote_add(
        order=order, line=w.small, quoted_on=D("2023-05-01"), delivery_date=D("2023-08-31")
    )
    found = {
        a.quota.team.name: (a.first_expected_on, a.expected_on)
        for a in quotas.allocations_with_availability().select_related("quota__team")
    }
    assert found == {
        "LLM pre-training": (D("2023-05-15"), D("2023-08-31")),  # its line was re-quoted
        "Inference": (D("2023-05-15"), D("2023-05-15")),
    }
    assert _availability()["Inference"][4] is False  # due within its 2023-H1 quota period


def test_quota_usage_figures(w: World) -> None:
    allocation_set(quota=w.llm, line=w.big, gpus=200, priority=2)
    allocation_set(quota=w.llm, line=w.small, gpus=128)
    allocation_set(quota=w.research, line=w.big, gpus=100, priority=1)
    _receive(w.big, 250)
    _receive(w.small, 28)
    usage = {
        q.team.name: (q.gpus, q.allocated, q.received, q.pending, q.remaining)
        for q in quotas.quotas_with_usage().select_related("team")
    }
    assert usage == {
        "LLM pre-training": (384, 328, 150 + 28, 328 - 178, 56),
        "Research": (300, 100, 100, 0, 200),
        "Vision": (100, 0, 0, 0, 100),
        "Inference": (96, 0, 0, 0, 96),
    }


def test_allocations_on_a_cancelled_order_do_not_count_against_the_quota(w: World) -> None:
    allocation_set(quota=w.llm, line=w.big, gpus=300)
    allocation_set(quota=w.llm, line=w.small, gpus=84)  # the quota's 384 in full
    _cancel(w.big.order)  # its 300 GPUs will never come

    usage = quotas.quotas_with_usage().get(pk=w.llm.pk)
    assert (usage.allocated, usage.remaining) == (84, 300)
    # The freed GPUs can be promised on another line, and the quota lowered to what counts.
    allocation_set(quota=w.llm, line=w.small, gpus=128)
    w.llm.gpus = 128
    quotas.quota_save(quota=w.llm)
    assert Allocation.objects.filter(line=w.big).get().gpus == 300  # kept, as history


# --- Slip emails to team leads ------------------------------------------------------------


@pytest.fixture
def _site(settings: Any) -> None:
    settings.SITE_URL = "https://procurement.example.com"
    settings.PROCUREMENT_MANAGERS = []


def _quote(
    capture: Any, order: PurchaseOrder, quoted_on: str, due: str, line: OrderLine | None = None
) -> None:
    """A quote recorded as the app does; its slip check runs after commit (eager Celery)."""
    with capture(execute=True):
        services.quote_add(order=order, line=line, quoted_on=D(quoted_on), delivery_date=D(due))


def _by_recipient(mailoutbox: list) -> dict[str, Any]:
    found = {m.to[0].split("@")[0]: m for m in mailoutbox}
    assert len(found) == len(mailoutbox), "one email per recipient"
    return found


@pytest.mark.usefixtures("_site")
def test_a_slip_emails_the_leads_of_affected_teams_once(
    w: World, mailoutbox: list, django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    allocation_set(quota=w.llm, line=w.big, gpus=200)
    allocation_set(quota=w.vision, line=w.big, gpus=84)
    allocation_set(quota=w.research, line=w.big, gpus=100)
    allocation_set(quota=w.inference, line=w.a10_line, gpus=40)  # another order: not affected
    freezer_today("2023-04-14")
    _quote(capture, w.big.order, "2023-04-14", "2023-05-15")
    assert mailoutbox == []

    freezer_today("2023-07-21")
    _quote(capture, w.big.order, "2023-07-21", "2023-12-15")

    mail = _by_recipient(mailoutbox)
    assert set(mail) == {"alice", "carol", "dave"}  # the buyer, and two leads; not bob
    carol = mail["carol"]
    assert carol.subject == (
        "[GPU slip] LLM pre-training, Vision: GPUs on PO-2023-0412 slipped "
        "(past the quota period's end)"
    )
    assert carol.body.startswith("GPUs promised to your teams slipped:\nLLM pre-training:\n")
    for text in (
        "  - 200x A100 80GB SXM on PO-2023-0412 from Vendor",
        ": expected 2023-05-15 -> 2023-12-15 (+214 days)\n"
        "    Quota: 384 A100 80GB SXM for 2023-07-01 to 2023-09-30; past the quota period's "
        "end (2023-09-30)\n",
        "Vision:\n  - 84x A100 80GB SXM on PO-2023-0412",
        "    Quota: 100 A100 80GB SXM for 2023-07-01 to 2023-12-31\n",
        "[WARNING] Delivery moved from 2023-05-15 to 2023-12-15, into December 2023.",
        "https://procurement.example.com/admin/orders/quota/usage/",
    ):
        assert text in carol.body, carol.body
    assert carol.body.count("past the quota period's end") == 1  # Vision's period ends later
    assert "Delivery dates slipped on" not in carol.body  # she neither buys nor watches it
    html, _ = carol.alternatives[0]
    assert "past the quota period's end (2023-09-30)" in html
    dave = mail["dave"]
    assert "Research:\n  - 100x A100 80GB SXM on PO-2023-0412" in dave.body
    assert "past the quota period" not in dave.body + dave.subject
    assert "LLM pre-training" not in mail["alice"].body  # the buyer's digest is as before

    # Told once: a rescan, and a re-quote that is not later, tell nobody anything.
    alerts.run_full_scan(today=D("2023-07-21"))
    _quote(capture, w.big.order, "2023-07-22", "2023-12-01")
    assert len(mailoutbox) == 3
    assert not TeamSlipNotice.objects.filter(email__isnull=True).exists()

    # A later slip is news: the leads hear again, from the date they last expected.
    freezer_today("2023-08-01")
    _quote(capture, w.big.order, "2023-08-01", "2024-01-31")
    later = _by_recipient(mailoutbox[3:])
    assert set(later) == {"alice", "carol", "dave"}
    assert "expected 2023-12-01 -> 2024-01-31 (+61 days)" in later["dave"].body
    assert "past the quota period's end (2023-12-31)" in later["dave"].body


@pytest.mark.usefixtures("_site")
def test_a_line_level_slip_tells_only_teams_waiting_on_that_line(
    w: World, mailoutbox: list, django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    capture = django_capture_on_commit_callbacks
    allocation_set(quota=w.llm, line=w.small, gpus=100)
    allocation_set(quota=w.inference, line=w.a10_line, gpus=40)  # same order, other line
    freezer_today("2023-05-01")
    _quote(capture, w.small.order, "2023-04-14", "2023-05-15")
    _quote(capture, w.small.order, "2023-05-01", "2023-08-31", line=w.small)

    mail = _by_recipient(mailoutbox)
    assert set(mail) == {"alice", "carol"}
    assert "100x A100 80GB SXM on PO-2023-0405" in mail["carol"].body
    assert "expected 2023-05-15 -> 2023-08-31 (+108 days)" in mail["carol"].body


@pytest.mark.usefixtures("_site")
def test_a_lead_who_buys_the_order_gets_one_email_with_both_parts(
    w: World, mailoutbox: list
) -> None:
    w.big.order.buyer = w.llm.team.lead
    w.big.order.save()
    allocation_set(quota=w.llm, line=w.big, gpus=200)
    services.quote_add(order=w.big.order, quoted_on=PLACED, delivery_date=D("2023-12-15"))

    call_command("scan_slips", "--date", "2023-05-01", stdout=StringIO())

    [email] = mailoutbox
    assert email.to == [w.llm.team.lead.email]
    assert "LLM pre-training:\n  - 200x A100 80GB SXM" in email.body
    assert "Delivery dates slipped on 1 order" in email.body


@pytest.mark.usefixtures("_site")
def test_team_notices_left_out_when_nothing_is_waiting_or_the_lead_changed(
    w: World, mailoutbox: list
) -> None:
    allocation_set(quota=w.llm, line=w.big, gpus=200)
    allocation_set(quota=w.research, line=w.big, gpus=100, priority=1)
    allocation_set(quota=w.vision, line=w.big, gpus=84)
    _receive(w.big, 100)  # Research (priority 1) has all of its GPUs: it is not told
    services.quote_add(order=w.big.order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()
    assert set(TeamSlipNotice.objects.values_list("team__name", flat=True)) == {
        "LLM pre-training",
        "Vision",
    }
    # Before the digest goes out: Vision gets a new lead, LLM's GPUs move elsewhere.
    Team.objects.filter(pk=w.vision.team_id).update(lead=UserFactory(username="erin"))
    allocations_move(quota=w.llm, from_line=w.big, to_line=w.small, gpus=128)
    allocation_set(quota=w.llm, line=w.big, gpus=0)

    for email_id in notifications.build_digests():
        notifications.send_outbox_email(email_id)

    assert [m.to[0] for m in mailoutbox] == [w.big.order.buyer.email]
    assert set(TeamSlipNotice.objects.values_list("skipped_reason", flat=True)) == {
        quotas.SKIPPED_NOT_LEAD,
        quotas.SKIPPED_NOTHING_WAITING,
    }


@pytest.mark.usefixtures("_site")
def test_a_lead_who_may_not_see_the_order_is_not_told_of_it(
    w: World, mailoutbox: list, settings: Any
) -> None:
    """With BUYERS_SEE_ALL_ORDERS false a Buyer sees only the orders they buy or watch: the
    pages' rule decides which team leads hear of a slip too."""
    settings.BUYERS_SEE_ALL_ORDERS = False
    vic = UserFactory(username="vic", role=Role.VIEWER)  # sees every order
    Team.objects.filter(pk=w.vision.team_id).update(lead=vic)
    w.big.order.watchers.add(w.research.team.lead)  # dave watches it; carol does not
    allocation_set(quota=w.llm, line=w.big, gpus=200)
    allocation_set(quota=w.vision, line=w.big, gpus=84)
    allocation_set(quota=w.research, line=w.big, gpus=100)
    services.quote_add(order=w.big.order, quoted_on=PLACED, delivery_date=D("2023-12-15"))

    call_command("scan_slips", "--date", "2023-05-01", stdout=StringIO())

    assert set(TeamSlipNotice.objects.values_list("team__name", flat=True)) == {
        "Vision",
        "Research",
    }
    assert set(_by_recipient(mailoutbox)) == {"alice", "dave", "vic"}  # not carol


@pytest.mark.usefixtures("_site")
def test_a_team_notice_is_skipped_when_its_lead_lost_sight_of_the_order(
    w: World, mailoutbox: list, settings: Any
) -> None:
    allocation_set(quota=w.llm, line=w.big, gpus=200)
    services.quote_add(order=w.big.order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()
    assert TeamSlipNotice.objects.exists()  # carol sees every order, for now
    settings.BUYERS_SEE_ALL_ORDERS = False  # and now only the ones she buys or watches

    for email_id in notifications.build_digests():
        notifications.send_outbox_email(email_id)

    assert [m.to[0] for m in mailoutbox] == [w.big.order.buyer.email]
    assert set(TeamSlipNotice.objects.values_list("skipped_reason", flat=True)) == {
        quotas.SKIPPED_LEAD_NO_ACCESS
    }


def test_an_alert_only_a_team_lead_hears_of_is_not_counted_as_untold(w: World) -> None:
    alice = w.big.order.buyer
    alice.is_active = False
    alice.save()
    allocation_set(quota=w.llm, line=w.big, gpus=200)
    services.quote_add(order=w.big.order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()
    assert not AlertNotice.objects.exists()  # the buyer may hear nothing; carol will
    assert not notifications.untold_alerts().exists()

    TeamSlipNotice.objects.update(skipped_reason=quotas.SKIPPED_LEAD_NO_ACCESS)
    assert notifications.untold_alerts().count() == SlipAlert.objects.count() > 0


def test_the_scan_and_its_notices_tell_team_leads_in_a_fixed_number_of_queries(w: World) -> None:
    def orders(n: int) -> None:
        for _ in range(n):
            line = OrderLineFactory(gpu_model=w.a100, quantity=8)
            for quoted_on, due in ((PLACED, "2023-05-15"), (D("2023-07-21"), "2023-12-15")):
                services.quote_add(
                    order=line.order, quoted_on=quoted_on, delivery_date=D(due), check=False
                )
            allocation_set(quota=w.research, line=line, gpus=4)
            allocation_set(quota=w.vision, line=line, gpus=4)

    def scan_queries() -> int:
        SlipAlert.objects.all().delete()  # and their notices
        with CaptureQueriesContext(connection) as ctx:
            alerts.scan_orders(today=D("2023-07-21"), batch_size=1000)
            alerts.alert_notices_create()
        return len(ctx.captured_queries)

    orders(5)
    with_5 = scan_queries()
    orders(20)
    assert scan_queries() == with_5
    assert TeamSlipNotice.objects.count() == 25 * 3 * 2  # 3 rules fire, 2 teams per order


# --- Admin --------------------------------------------------------------------------------


def _rationing(n: int) -> None:
    """n teams, each with a quota and allocations on two orders, some quoted and received."""
    gpu = GpuModelFactory(name="A100 80GB SXM")
    for _ in range(n):
        team = TeamFactory()
        team.members.add(team.lead, UserFactory())
        quota = QuotaFactory(team=team, gpu_model=gpu)
        for quantity in (64, 32):
            line = OrderLineFactory(gpu_model=gpu, quantity=quantity)
            services.quote_add(
                order=line.order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False
            )
            allocation_set(quota=quota, line=line, gpus=quantity - 8)
            _receive(line, 16)


ADMIN_PAGES = [
    ("admin:orders_team_changelist", ""),
    ("admin:orders_quota_changelist", ""),
    ("admin:orders_quota_changelist", "?o=-7"),  # by received
    ("admin:orders_allocation_changelist", ""),
    ("admin:orders_allocation_changelist", "?past_period_end=no&o=6"),
    ("admin:orders_quota_usage", ""),
]


@pytest.mark.parametrize(("name", "query"), ADMIN_PAGES)
def test_quota_pages_run_the_same_queries_for_3_and_30_teams(
    admin_client_logged_in: Any, django_assert_num_queries: Any, name: str, query: str
) -> None:
    _rationing(3)
    with CaptureQueriesContext(connection) as ctx:
        response = admin_client_logged_in.get(reverse(name) + query)
    assert response.status_code == 200
    with_3 = len(ctx.captured_queries)
    _rationing(27)
    with django_assert_num_queries(with_3):
        response = admin_client_logged_in.get(reverse(name) + query)
    assert response.status_code == 200
    assert with_3 <= 14, f"{with_3} queries"


def test_the_quota_usage_page_shows_the_figures(admin_client_logged_in: Any) -> None:
    load_demo()
    response = admin_client_logged_in.get(reverse("admin:orders_quota_usage"))
    html = response.content.decode()
    inference, llm = response.context["teams"]  # by name
    assert (inference["team"].name, llm["team"].name) == ("Inference", "LLM pre-training")
    usage = [(q.gpus, q.allocated, q.received, q.remaining) for q in inference["quotas"]]
    assert usage == [(96, 72, 72, 24)]
    (quota,) = llm["quotas"]
    assert (quota.gpus, quota.allocated, quota.received, quota.remaining) == (384, 384, 0, 0)
    assert [a.line.order.po_number for a in quota.allocation_list] == [
        "PO-2023-0405",  # expected 2023-07-14
        "PO-2023-0412",  # expected 2023-12-15
    ]
    for text in ("LLM pre-training", "carol@gpu-buyers.example", "288 on PO-2023-0412"):
        assert text in html
    assert 'href="/admin/orders/quota/usage/">Quota usage</a>' in html  # in the header


def _line_url(line: OrderLine) -> str:
    return reverse("admin:orders_orderline_change", args=[line.pk])


def test_allocations_inline_on_the_order_line_are_saved_through_the_service(
    w: World, admin_client_logged_in: Any, admin_user: Any
) -> None:
    allocation_set(quota=w.llm, line=w.big, gpus=300)
    allocation_set(quota=w.research, line=w.big, gpus=84)
    url = _line_url(w.big)

    # A cut and a raise in one save: checked against each other, saved cut first.
    data = _form_data(admin_client_logged_in.get(url))
    assert [data["allocations-0-quota"], data["allocations-1-quota"]] == [w.llm.pk, w.research.pk]
    data["allocations-0-gpus"], data["allocations-1-gpus"] = 100, 284
    response = admin_client_logged_in.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert _allocations() == sorted(
        [(w.llm.pk, w.big.pk, 100, 10), (w.research.pk, w.big.pk, 284, 10)]
    )
    assert set(Allocation.objects.values_list("allocated_by", flat=True)) == {admin_user.pk}

    # One more row that does not fit: an error on the page, nothing saved.
    data = _form_data(admin_client_logged_in.get(url))
    _add_inline_row(data, "allocations", quota=w.vision.pk, gpus=10, priority=1)
    response = admin_client_logged_in.post(url, data)
    assert response.status_code == 200
    assert (
        "Line PO-2023-0412 (A100 80GB SXM) has 384 GPUs; 384 are already allocated elsewhere, "
        "so at most 0 for Vision, not 10." in response.content.decode()
    )
    assert Allocation.objects.count() == 2

    # Remove one row and give its GPUs to a new one, in one save.
    data = _form_data(admin_client_logged_in.get(url))
    data["allocations-0-DELETE"] = "on"
    _add_inline_row(data, "allocations", quota=w.vision.pk, gpus=100, priority=1)
    response = admin_client_logged_in.post(url, data)
    assert response.status_code == 302, response.context and response.context["errors"]
    assert _allocations() == sorted(
        [(w.vision.pk, w.big.pk, 100, 1), (w.research.pk, w.big.pk, 284, 10)]
    )


def test_the_inline_offers_only_quotas_of_the_lines_gpu_model(
    w: World, admin_client_logged_in: Any
) -> None:
    response = admin_client_logged_in.get(_line_url(w.a10_line))
    formset = response.context["inline_admin_formsets"][0].formset
    assert list(formset.empty_form.fields["quota"].queryset) == [w.inference]


def test_a_quota_overlapping_another_is_an_error_on_the_form(
    w: World, admin_client_logged_in: Any
) -> None:
    url = reverse("admin:orders_quota_add")
    response = admin_client_logged_in.post(
        url,
        {
            "team": w.llm.team_id,
            "gpu_model": w.a100.pk,
            "period_start": "2023-09-01",
            "period_end": "2023-12-31",
            "gpus": "128",
            "allocations-TOTAL_FORMS": "0",
            "allocations-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "which overlaps 2023-09-01 to 2023-12-31" in response.content.decode()
    assert Quota.objects.count() == 4


def test_move_an_allocation_to_an_earlier_order_in_the_admin(
    slipping: World, admin_client_logged_in: Any
) -> None:
    w = slipping
    services.quote_add(order=w.small.order, quoted_on=PLACED, delivery_date=D("2023-07-14"))
    allocation = Allocation.objects.get(quota=w.llm, line=w.big)
    changelist = reverse("admin:orders_allocation_changelist")

    response = admin_client_logged_in.post(
        changelist,
        {"action": "move_to_earlier_order", "_selected_action": [allocation.pk]},
    )
    url = reverse("admin:orders_allocation_move", args=[allocation.pk])
    assert response.status_code == 302
    assert response["Location"] == url
    page = admin_client_logged_in.get(url).content.decode()
    assert "PO-2023-0405 (Vendor" in page
    assert "32 of 128 free, expected 2023-07-14" in page

    response = admin_client_logged_in.post(url, {"to_line": w.small.pk, "gpus": 64})
    assert response.status_code == 200
    assert "has 32 free GPUs (128 ordered, 96 allocated); cannot move 64 there." in (
        response.content.decode()
    )
    assert Allocation.objects.get(pk=allocation.pk).gpus == 288

    response = admin_client_logged_in.post(url, {"to_line": w.small.pk, "gpus": 32})
    assert response.status_code == 302
    assert Allocation.objects.get(pk=allocation.pk).gpus == 256
    assert Allocation.objects.get(quota=w.llm, line=w.small).gpus == 32


def test_the_move_action_takes_one_allocation_at_a_time(
    slipping: World, admin_client_logged_in: Any
) -> None:
    response = admin_client_logged_in.post(
        reverse("admin:orders_allocation_changelist"),
        {
            "action": "move_to_earlier_order",
            "_selected_action": list(Allocation.objects.values_list("pk", flat=True)),
        },
        follow=True,
    )
    assert "Select one allocation to move at a time." in response.content.decode()


def test_an_allocation_over_the_quota_is_an_error_on_its_form(
    w: World, admin_client_logged_in: Any
) -> None:
    allocation_set(quota=w.research, line=w.big, gpus=250)
    response = admin_client_logged_in.post(
        reverse("admin:orders_allocation_add"),
        {"quota": w.research.pk, "line": w.small.pk, "gpus": 100, "priority": 10},
    )
    assert response.status_code == 200
    assert "so at most 50 here, not 100." in response.content.decode()
    assert Allocation.objects.count() == 1


# --- CSV export ---------------------------------------------------------------------------

HEADER = (
    "team,team_lead_email,gpu_model,period_start,period_end,quota,po_number,vendor,allocated,"
    "priority,expected_on,received,past_period_end"
)


def test_export_allocations_writes_one_row_per_allocation(
    w: World, tmp_path: Any, django_assert_num_queries: Any
) -> None:
    Team.objects.filter(pk=w.vision.team_id).update(name="=HYPERLINK(evil)")
    w.big.order.vendor.name = "Pacific Silicon Distribution"
    w.big.order.vendor.save()
    allocation_set(quota=w.llm, line=w.big, gpus=200, priority=1)
    allocation_set(quota=w.vision, line=w.big, gpus=84)
    allocation_set(quota=w.inference, line=w.a10_line, gpus=40)
    services.quote_add(order=w.big.order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    _receive(w.big, 50)
    path = tmp_path / "allocations.csv"

    with django_assert_num_queries(1):
        call_command("export_allocations", "--output", str(path), stderr=StringIO())

    raw = path.read_bytes().decode()
    assert raw.startswith(HEADER + "\r\n")
    rows = list(csv.reader(raw.splitlines()))
    assert rows[1:] == [
        [
            "'=HYPERLINK(evil)",
            "carol@gpu-buyers.example",
            "A100 80GB SXM",
            "2023-07-01",
            "2023-12-31",
            "100",
            "PO-2023-0412",
            "Pacific Silicon Distribution",
            "84",
            "10",
            "2023-12-15",
            "0",
            "no",
        ],
        [
            "Inference",
            "bob@gpu-buyers.example",
            "A10",
            "2023-01-01",
            "2023-06-30",
            "96",
            "PO-2023-0405",
            w.a10_line.order.vendor.name,
            "40",
            "10",
            "",
            "0",
            "",
        ],
        [
            "LLM pre-training",
            "carol@gpu-buyers.example",
            "A100 80GB SXM",
            "2023-07-01",
            "2023-09-30",
            "384",
            "PO-2023-0412",
            "Pacific Silicon Distribution",
            "200",
            "1",
            "2023-12-15",
            "50",
            "yes",
        ],
    ]

    out = StringIO()
    call_command("export_allocations", stdout=out)
    assert out.getvalue().replace("\r\n", "\n") == raw.replace("\r\n", "\n")


# --- Demo data ----------------------------------------------------------------------------


def test_demo_rations_a_training_run_of_a100s() -> None:
    load_demo()
    llm = quotas.quotas_with_usage().get(team__name="LLM pre-training")
    assert (llm.gpu_model.name, llm.gpus, llm.allocated, llm.remaining) == (
        "A100 80GB SXM",
        384,
        384,
        0,
    )
    assert (llm.period_start, llm.period_end) == (D("2023-07-01"), D("2023-12-31"))
    assert llm.team.lead.username == "carol"
    # The 288 waiting for December can partly move to PO-2023-0405, due in July.
    slipping = OrderLine.objects.get(order__po_number="PO-2023-0412")
    [free] = quotas.lines_with_free_gpus(gpu_model_id=llm.gpu_model_id, exclude_line_id=slipping.pk)
    assert (free.order.po_number, free.free, free.current_delivery_date) == (
        "PO-2023-0405",
        32,
        D("2023-07-14"),
    )


# --- Two managers at once (PostgreSQL row locks) --------------------------------------------


def _each_thread(*values: Any) -> Callable[[], Any]:
    """A callable handing each thread of run_at_once the next of `values`."""
    lock, pending = threading.Lock(), list(values)

    def take() -> Any:
        with lock:
            return pending.pop(0)

    return take


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_managers_allocating_most_of_a_line_at_once_cannot_oversubscribe_it(
    w: World,
) -> None:
    """Two teams each take 300 of a line of 384 at the same moment: exactly one gets them."""
    next_quota = _each_thread(w.llm, w.research)
    outcomes = run_at_once(lambda: allocation_set(quota=next_quota(), line=w.big, gpus=300))

    assert sorted(type(o).__name__ for o in outcomes) == ["Allocation", "ValidationError"]
    [refused] = [o for o in outcomes if isinstance(o, ValidationError)]
    assert "300 are already allocated elsewhere, so at most 84" in " ".join(refused.messages)
    assert sum(Allocation.objects.filter(line=w.big).values_list("gpus", flat=True)) == 300


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_managers_using_one_quota_on_two_lines_at_once_cannot_exceed_it(w: World) -> None:
    """300 + 128 of a quota of 384, on two lines at the same moment: exactly one fits."""
    next_share = _each_thread((w.big, 300), (w.small, 128))

    def allocate() -> Allocation | None:
        line, gpus = next_share()
        return allocation_set(quota=w.llm, line=line, gpus=gpus)

    outcomes = run_at_once(allocate)

    assert sorted(type(o).__name__ for o in outcomes) == ["Allocation", "ValidationError"]
    assert sum(Allocation.objects.filter(quota=w.llm).values_list("gpus", flat=True)) <= 384
