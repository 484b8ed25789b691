"""Alerts that say the truth: one open alert per order and rule; a newer finding supersedes
the open one, a finding that no longer holds is resolved (and stops escalating), and both
stay as history. The database holds "at most one open" on SQLite and PostgreSQL."""

from __future__ import annotations

import importlib
from datetime import date
from typing import Any

import pytest
from django.db import IntegrityError, connection, transaction
from django.db.migrations.executor import MigrationExecutor
from django.urls import reverse
from django.utils import timezone

from orders import alerts, notifications, services
from orders.dashboard import Selection, open_alert_counts, slipping_orders_for_display
from orders.models import AlertNotice, PurchaseOrder, SlipAlert
from orders.models.alerts import SKIPPED_ALERT_CLOSED
from orders.scorecards import scorecards
from tests.conftest import run_at_once
from tests.factories import GpuModelFactory, OrderLineFactory, PurchaseOrderFactory

pytestmark = pytest.mark.django_db

D = date.fromisoformat
PLACED = D("2023-04-14")
OPEN, SUPERSEDED, RESOLVED = "open", "superseded", "resolved"
migration = importlib.import_module("orders.migrations.0013_slipalert_status")


@pytest.fixture(autouse=True)
def _rules(settings: Any) -> None:
    settings.PROCUREMENT_MANAGERS = ["head-of-procurement@gpu-buyers.example"]
    settings.SLIP_ESCALATE_DAYS = 7


def _order(**kw: Any) -> PurchaseOrder:
    kw.setdefault("need_by", D("2023-09-30"))
    order = PurchaseOrderFactory(placed_on=PLACED, **kw)
    OrderLineFactory(order=order, quantity=384, gpu_model=GpuModelFactory(name="A100 80GB SXM"))
    return order


def _quote(order: PurchaseOrder, quoted_on: str, delivery: str, capture: Any) -> None:
    """A quote as the app records it, with the per-quote check its commit queues."""
    with capture(execute=True):
        services.quote_add(order=order, quoted_on=D(quoted_on), delivery_date=D(delivery))


def _alerts(order: PurchaseOrder, code: str) -> list[tuple[str, str, str]]:
    """(status, quoted delivery date, closed_reason) of the order's alerts for a rule, oldest
    first."""
    return [
        (a.status, a.quote.delivery_date.isoformat(), a.closed_reason)
        for a in order.alerts.filter(code=code).select_related("quote").order_by("id")
    ]


def _open_codes(order: PurchaseOrder) -> list[str]:
    return sorted(order.alerts.filter(status=OPEN).values_list("code", flat=True))


def test_a_later_requote_supersedes_the_open_alert_and_keeps_it_as_history(
    django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    order = _order()
    freezer_today("2023-04-14")
    _quote(order, "2023-04-14", "2023-05-15", django_capture_on_commit_callbacks)
    freezer_today("2023-07-21")
    _quote(order, "2023-07-21", "2023-10-15", django_capture_on_commit_callbacks)
    freezer_today("2023-08-01")
    _quote(order, "2023-08-01", "2023-11-15", django_capture_on_commit_callbacks)

    assert _alerts(order, "past_need_by") == [
        (SUPERSEDED, "2023-10-15", "re-quoted 2023-08-01: delivery now 2023-11-15"),
        (OPEN, "2023-11-15", ""),
    ]
    # One open alert per rule, whatever the number of re-quotes.
    assert _open_codes(order) == [
        "lead_time_multiplied",
        "lead_time_over_limit",
        "past_need_by",
    ]
    closed = order.alerts.exclude(status=OPEN)
    assert all(a.closed_at is not None for a in closed)


def test_an_overdue_order_redated_into_the_future_is_resolved_and_stops_escalating(
    django_capture_on_commit_callbacks: Any, freezer_today: Any, mailoutbox: list
) -> None:
    order = _order(need_by=None)
    freezer_today("2023-04-14")
    _quote(order, "2023-04-14", "2023-05-15", django_capture_on_commit_callbacks)
    freezer_today("2023-06-01")
    alerts.run_full_scan(today=D("2023-06-01"))
    overdue = order.alerts.get(code="overdue")
    assert (overdue.status, overdue.severity) == (OPEN, "critical")
    assert alerts.escalate(today=D("2023-06-08")) == 2  # buyer and manager, round 1

    freezer_today("2023-06-12")
    _quote(order, "2023-06-12", "2023-07-01", django_capture_on_commit_callbacks)

    overdue.refresh_from_db()
    assert overdue.status == RESOLVED
    assert overdue.closed_reason == (
        "re-quoted 2023-06-12: delivery now 2023-07-01, not overdue on 2023-06-12"
    )
    assert _open_codes(order) == []
    notices = AlertNotice.objects.count()
    assert alerts.escalate(today=D("2023-06-15")) == 0  # round 2 would be due: none
    alerts.run_full_scan(today=D("2023-06-22"))  # round 3 would be due
    assert AlertNotice.objects.count() == notices


def test_the_daily_scan_resolves_what_a_requote_no_scan_saw_undid() -> None:
    """Quotes loaded without the per-quote check (a bulk import): the daily scan closes."""
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-05-15"), check=False)
    services.quote_add(
        order=order, quoted_on=D("2023-05-01"), delivery_date=D("2023-10-31"), check=False
    )
    alerts.run_full_scan(today=D("2023-05-01"))
    assert "past_need_by" in _open_codes(order)

    services.quote_add(
        order=order, quoted_on=D("2023-05-20"), delivery_date=D("2023-09-20"), check=False
    )
    alerts.run_full_scan(today=D("2023-05-20"))

    assert _alerts(order, "past_need_by") == [
        (
            RESOLVED,
            "2023-10-31",
            "re-quoted 2023-05-20: delivery now 2023-09-20, not past need-by 2023-09-30",
        )
    ]


def test_an_earlier_date_undoes_a_slip_and_the_alert_is_resolved(
    django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    order = _order(need_by=None)
    freezer_today("2023-04-14")
    _quote(order, "2023-04-14", "2023-06-15", django_capture_on_commit_callbacks)
    freezer_today("2023-05-02")
    _quote(order, "2023-05-02", "2023-12-05", django_capture_on_commit_callbacks)
    assert _open_codes(order) == [
        "december_delivery",
        "lead_time_multiplied",
        "lead_time_over_limit",
    ]
    freezer_today("2023-05-03")
    _quote(order, "2023-05-03", "2023-06-20", django_capture_on_commit_callbacks)

    assert _open_codes(order) == []
    reasons = dict(order.alerts.values_list("code", "closed_reason"))
    assert reasons == {
        "december_delivery": "re-quoted 2023-05-03: delivery now 2023-06-20, before December 2023",
        "lead_time_multiplied": "re-quoted 2023-05-03: lead time now 67 days, under 3x the "
        "first quote's 62",
        "lead_time_over_limit": "re-quoted 2023-05-03: lead time now 67 days, under the "
        "90-day limit",
    }
    assert set(order.alerts.values_list("status", flat=True)) == {RESOLVED}


def test_a_receipt_resolves_overdue_and_undoing_it_reopens_the_same_alert(
    django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    order = _order(need_by=None)
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-05-15"), check=False)
    alerts.scan_orders(today=D("2023-06-01"))
    overdue = order.alerts.get(code="overdue")

    freezer_today("2023-06-02")
    with django_capture_on_commit_callbacks(execute=True):
        delivery = services.delivery_record(line=order.lines.get(), quantity=384)
    overdue.refresh_from_db()
    assert (overdue.status, overdue.closed_reason) == (RESOLVED, "order received")

    with django_capture_on_commit_callbacks(execute=True):
        services.delivery_remove(delivery=delivery)  # recorded by mistake
    overdue.refresh_from_db()
    assert (overdue.status, overdue.closed_at, overdue.closed_reason) == (OPEN, None, "")
    assert order.alerts.count() == 1


def test_a_cancelled_order_has_its_open_alerts_resolved_by_the_daily_scan() -> None:
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False)
    alerts.scan_orders(today=D("2023-05-01"))
    assert _open_codes(order)
    PurchaseOrder.objects.filter(pk=order.pk).update(status="cancelled")

    alerts.run_full_scan(today=D("2023-05-02"))

    assert _open_codes(order) == []
    assert set(order.alerts.values_list("closed_reason", flat=True)) == {"order cancelled"}


def test_a_notice_for_an_alert_closed_before_its_digest_is_skipped(mailoutbox: list) -> None:
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False)
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()
    services.quote_add(
        order=order, quoted_on=D("2023-05-02"), delivery_date=D("2023-05-20"), check=False
    )
    alerts.scan_orders(today=D("2023-05-02"))  # every finding undone before any digest

    assert notifications.build_digests() == []
    assert set(AlertNotice.objects.values_list("skipped_reason", flat=True)) == {
        SKIPPED_ALERT_CLOSED
    }


def test_an_alert_closed_before_anyone_was_told_is_not_told() -> None:
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False)
    alerts.scan_orders(today=D("2023-05-01"))
    services.quote_add(
        order=order, quoted_on=D("2023-05-02"), delivery_date=D("2023-05-20"), check=False
    )
    alerts.scan_orders(today=D("2023-05-02"))

    assert list(order.alerts.values_list("status", flat=True)) == [RESOLVED, RESOLVED]
    assert alerts.alert_notices_create() == 0


def test_vendor_scorecards_count_orders_with_open_alerts_only() -> None:
    resolved, still_late = _order(), _order()
    for order in (resolved, still_late):
        services.quote_add(
            order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False
        )
    still_late.vendor = resolved.vendor
    still_late.save(update_fields=["vendor"])
    alerts.scan_orders(today=D("2023-05-01"))
    services.quote_add(
        order=resolved, quoted_on=D("2023-05-02"), delivery_date=D("2023-05-20"), check=False
    )
    alerts.scan_orders(today=D("2023-05-02"))

    [card] = [c for c in scorecards() if c.vendor == resolved.vendor]
    assert (card.orders, card.orders_with_open_alerts) == (2, 1)


def test_the_dashboard_counts_orders_not_alerts_after_requotes(
    django_capture_on_commit_callbacks: Any, freezer_today: Any, client: Any, admin_user: Any
) -> None:
    freezer_today("2023-07-21")
    orders = [_order() for _ in range(3)]
    for order in orders:
        _quote(order, "2023-04-14", "2023-05-15", django_capture_on_commit_callbacks)
        _quote(order, "2023-07-21", "2023-10-15", django_capture_on_commit_callbacks)
    freezer_today("2023-07-25")
    _quote(orders[0], "2023-07-25", "2023-11-15", django_capture_on_commit_callbacks)  # worse

    rows = {row.code: row for row in open_alert_counts(Selection()).rows}
    assert (rows["past_need_by"].alerts, rows["past_need_by"].orders) == (3, 3)
    tags = [
        [a.code for a in order.open_alert_list]
        for order in slipping_orders_for_display(Selection())
    ]
    assert sorted(tags) == [["lead_time_multiplied", "lead_time_over_limit", "past_need_by"]] * 3

    client.force_login(admin_user)
    page = client.get("/").content.decode()
    assert '<td class="num" data-count="orders">3</td>' in page
    assert '<td class="num" data-count="alerts">4</td>' not in page


@pytest.mark.parametrize("closed", [SUPERSEDED, RESOLVED])
def test_the_database_refuses_a_second_open_alert_per_order_and_rule(closed: str) -> None:
    order = _order()
    first, second = (
        services.quote_add(order=order, quoted_on=PLACED, delivery_date=D(d), check=False)
        for d in ("2023-10-15", "2023-11-15")
    )
    row = {"order": order, "code": "past_need_by", "severity": "critical", "message": "m"}
    SlipAlert.objects.create(quote=first, **row)
    with pytest.raises(IntegrityError), transaction.atomic():
        SlipAlert.objects.create(quote=second, **row)
    # Any number of closed ones beside the open one.
    SlipAlert.objects.update(status=closed, closed_at=timezone.now())
    SlipAlert.objects.create(quote=second, **row)
    assert SlipAlert.objects.filter(status=OPEN).count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_after_a_requote_leave_one_open_alert_per_rule() -> None:
    orders = [_order() for _ in range(20)]
    for order in orders:  # check=False: only the scans under test judge these orders
        for quoted_on, delivery in ((PLACED, "2023-05-15"), (D("2023-07-01"), "2023-10-15")):
            services.quote_add(
                order=order, quoted_on=quoted_on, delivery_date=D(delivery), check=False
            )
    alerts.scan_orders(today=D("2023-07-01"))
    for order in orders:
        services.quote_add(
            order=order, quoted_on=D("2023-07-21"), delivery_date=D("2023-11-15"), check=False
        )

    outcomes = run_at_once(lambda: alerts.scan_orders(today=D("2023-07-21")).as_dict())

    assert not [o for o in outcomes if isinstance(o, BaseException)], outcomes
    assert SlipAlert.objects.filter(status=OPEN).count() == 20 * 3
    assert SlipAlert.objects.filter(status=SUPERSEDED).count() == 20 * 3
    assert sum(o["new_alerts"] for o in outcomes) == 20 * 3


@pytest.mark.django_db(transaction=True)
def test_the_migration_keeps_the_newest_alert_per_rule_open_and_supersedes_the_rest() -> None:
    order = _order()
    quotes = [
        services.quote_add(order=order, quoted_on=PLACED, delivery_date=D(d), check=False)
        for d in ("2023-10-15", "2023-11-15", "2023-12-15")
    ]
    before = [("orders", migration.Migration.dependencies[0][1])]
    after = [("orders", migration.Migration.__module__.rsplit(".", 1)[-1])]
    executor = MigrationExecutor(connection)
    executor.migrate(before)
    old = executor.loader.project_state(before).apps.get_model("orders", "SlipAlert")
    at = timezone.make_aware(timezone.datetime(2023, 7, 1, 7))
    for code, quote in [("past_need_by", q) for q in quotes] + [("overdue", quotes[0])]:
        old.objects.create(
            order_id=order.pk,
            code=code,
            severity="critical",
            quote_id=quote.pk,
            message=code,
            detected_at=at + timezone.timedelta(days=quote.pk - quotes[0].pk),
        )

    executor = MigrationExecutor(connection)
    executor.migrate(after)
    try:
        assert _alerts(order, "past_need_by") == [
            (SUPERSEDED, "2023-10-15", migration.SUPERSEDED_REASON),
            (SUPERSEDED, "2023-11-15", migration.SUPERSEDED_REASON),
            (OPEN, "2023-12-15", ""),
        ]
        assert _alerts(order, "overdue") == [(OPEN, "2023-10-15", "")]
    finally:  # the later migrations, for the tests that follow
        executor = MigrationExecutor(connection)
        executor.migrate(executor.loader.graph.leaf_nodes())


def test_the_admin_lists_open_alerts_unless_asked_and_keeps_closed_ones_as_history(
    admin_client_logged_in: Any, django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    order = _order(need_by=None)
    freezer_today("2023-04-14")
    _quote(order, "2023-04-14", "2023-05-15", django_capture_on_commit_callbacks)
    freezer_today("2023-05-02")
    _quote(order, "2023-05-02", "2023-08-31", django_capture_on_commit_callbacks)
    _quote(order, "2023-05-03", "2023-09-30", django_capture_on_commit_callbacks)
    by_status = {
        status: set(order.alerts.filter(status=status).values_list("pk", flat=True))
        for status in (OPEN, SUPERSEDED)
    }
    assert len(by_status[OPEN]) == len(by_status[SUPERSEDED]) == 2
    client, url = admin_client_logged_in, reverse("admin:orders_slipalert_changelist")

    def listed(**params: str) -> set[int]:
        return {a.pk for a in client.get(url, params).context["cl"].result_list}

    assert listed() == by_status[OPEN]
    assert listed(status=SUPERSEDED) == by_status[SUPERSEDED]
    assert listed(status="all") == by_status[OPEN] | by_status[SUPERSEDED]

    old = min(by_status[SUPERSEDED])
    page = client.get(reverse("admin:orders_slipalert_change", args=[old]))
    assert page.context["has_change_permission"] is False  # history: read-only
    action = {"action": "acknowledge", "_selected_action": sorted(by_status[OPEN] | {old})}
    client.post(f"{url}?status=all", action)
    acknowledged = set(
        order.alerts.filter(acknowledged_at__isnull=False).values_list("pk", flat=True)
    )
    assert acknowledged == by_status[OPEN]
