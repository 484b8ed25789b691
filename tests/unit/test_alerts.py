"""Slip alerts end to end with eager Celery and Django's in-memory mail outbox."""

from __future__ import annotations

import random
import socket
from datetime import date, timedelta
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from orders import alerts, notifications, services, tasks
from orders.models import (
    AlertNotice,
    OrderLine,
    OutboxEmail,
    PurchaseOrder,
    ScanRun,
    SlipAlert,
)
from orders.slips import Code, Quote, line_schedule, schedule
from tests.conftest import run_at_once
from tests.factories import GpuModelFactory, OrderLineFactory, PurchaseOrderFactory, UserFactory

pytestmark = pytest.mark.django_db

D = date.fromisoformat
PLACED = D("2023-04-14")


@pytest.fixture(autouse=True)
def _rules(settings: Any) -> None:
    settings.SITE_URL = "https://procurement.example.com"
    settings.PROCUREMENT_MANAGERS = []
    settings.SLIP_ESCALATE_DAYS = 7


def _order(**kw: Any) -> PurchaseOrder:
    kw.setdefault("need_by", D("2023-09-30"))
    order = PurchaseOrderFactory(placed_on=PLACED, **kw)
    OrderLineFactory(order=order, quantity=384, gpu_model=GpuModelFactory(name="A100 80GB SXM"))
    return order


def _quote(order: PurchaseOrder, quoted_on: str, delivery: str, capture: Any) -> None:
    """Record a quote as the app does and run what its commit enqueues (eager Celery)."""
    with capture(execute=True) as callbacks:
        services.quote_add(order=order, quoted_on=D(quoted_on), delivery_date=D(delivery))
    # One slip check per new quote, after commit (the digests it sends add their own).
    checks = [c for c in callbacks if "orders.tasks.check_orders" in c.__qualname__]
    assert len(checks) == 1


def _codes(order: PurchaseOrder) -> set[str]:
    return set(order.alerts.values_list("code", flat=True))


def test_a_requote_to_december_emails_the_buyer_once(
    mailoutbox: list, django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    freezer_today("2023-04-14")
    order = _order()
    _quote(order, "2023-04-14", "2023-05-15", django_capture_on_commit_callbacks)
    assert not order.alerts.exists()
    assert mailoutbox == []

    freezer_today("2023-07-21")
    _quote(order, "2023-07-21", "2023-12-15", django_capture_on_commit_callbacks)

    assert _codes(order) == {
        "lead_time_multiplied",
        "lead_time_over_limit",
        "december_delivery",
        "past_need_by",
    }
    assert len(mailoutbox) == 1
    email = mailoutbox[0]
    assert email.to == [order.buyer.email]
    assert email.subject == f"[GPU slip] {order.po_number}: past need by"
    for text in (
        f"{order.po_number} from {order.vendor.name}: 384x A100 80GB SXM",
        "Delivery: 2023-05-15 -> 2023-12-15 (+214 days)",
        "Lead time: 31 -> 245 days, x7.9",
        "Need by: 2023-09-30",
        f"https://procurement.example.com/admin/orders/purchaseorder/{order.pk}/change/",
        "[CRITICAL] Delivery 2023-12-15 is 76 days after the need-by date 2023-09-30.",
    ):
        assert text in email.body, email.body
    html, mimetype = email.alternatives[0]
    assert mimetype == "text/html"
    assert "31 -&gt; 245 days, x7.9" in html
    assert order.alerts.filter(notified_at__isnull=True).count() == 0

    # Scanning again finds the same facts and tells nobody anything.
    alerts.run_full_scan(today=D("2023-07-21"))
    assert len(mailoutbox) == 1
    assert order.alerts.count() == 4


def test_a_worse_requote_raises_new_alerts_a_better_one_does_not(
    mailoutbox: list, django_capture_on_commit_callbacks: Any, freezer_today: Any
) -> None:
    freezer_today("2023-04-14")
    order = _order(need_by=None)
    _quote(order, "2023-04-14", "2023-05-15", django_capture_on_commit_callbacks)
    freezer_today("2023-05-10")
    _quote(order, "2023-05-10", "2023-08-31", django_capture_on_commit_callbacks)
    assert _codes(order) == {"lead_time_multiplied", "lead_time_over_limit"}
    assert len(mailoutbox) == 1

    _quote(order, "2023-05-11", "2023-08-20", django_capture_on_commit_callbacks)  # earlier
    assert order.alerts.count() == 2
    assert len(mailoutbox) == 1

    _quote(order, "2023-05-12", "2023-10-31", django_capture_on_commit_callbacks)  # worse
    assert order.alerts.count() == 4
    assert len(mailoutbox) == 2
    assert "2023-10-31" in mailoutbox[1].body


def test_after_a_worker_outage_the_next_scan_raises_everything_missed(mailoutbox: list) -> None:
    """Quotes saved while no worker ran (their checks lost), and weeks pass."""
    late = _order()
    services.quote_add(order=late, quoted_on=PLACED, delivery_date=D("2023-05-15"))
    services.quote_add(order=late, quoted_on=D("2023-06-01"), delivery_date=D("2023-12-15"))
    due = _order(need_by=None)
    services.quote_add(order=due, quoted_on=PLACED, delivery_date=D("2023-05-15"))
    assert not SlipAlert.objects.exists()  # on_commit never ran: nothing was checked

    result = alerts.run_full_scan(today=D("2024-01-10"))

    assert _codes(late) == {
        "lead_time_multiplied",
        "lead_time_over_limit",
        "december_delivery",
        "past_need_by",
        "overdue",
    }
    assert _codes(due) == {"overdue"}
    assert sum(result.new_alerts.values()) == 6
    for email_id in result.email_ids:
        notifications.send_outbox_email(email_id)
    assert len(mailoutbox) == 2  # two buyers, one digest each


def test_closed_orders_raise_nothing(mailoutbox: list) -> None:
    for status in ("cancelled", "received", "draft"):
        order = _order(status=status)
        services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    result = alerts.run_full_scan(today=D("2024-01-10"))
    assert result.orders == 0
    assert not SlipAlert.objects.exists()


def test_fully_received_orders_are_not_overdue() -> None:
    order = _order(need_by=None)
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-05-15"))
    line = order.lines.get()
    services.delivery_record(line=line, quantity=200, delivered_on=D("2023-05-20"))
    alerts.scan_orders(today=D("2023-06-01"))
    assert _codes(order) == {"overdue"}  # partially received: still late
    order.refresh_from_db()
    assert order.status == "partially_received"


def test_one_digest_per_recipient_to_buyer_and_active_watchers_with_email(
    mailoutbox: list,
) -> None:
    buyer = UserFactory(username="alice")
    watcher = UserFactory(username="carol")
    inactive = UserFactory(username="gone", is_active=False)
    no_email = UserFactory(username="noemail", email="")
    first, second = _order(buyer=buyer), _order(buyer=buyer)
    first.watchers.set([watcher, inactive, no_email])
    for order in (first, second):
        services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))

    call_command("scan_slips", "--date", "2023-05-01", stdout=StringIO())

    by_recipient = {tuple(m.to): m for m in mailoutbox}
    assert set(by_recipient) == {(buyer.email,), (watcher.email,)}
    assert first.po_number in by_recipient[(buyer.email,)].subject
    assert second.po_number in by_recipient[(buyer.email,)].subject
    assert second.po_number not in by_recipient[(watcher.email,)].body


def test_the_scan_records_alerts_and_the_next_step_tells_whoever_may_hear_once() -> None:
    """An alert whose order has nobody to tell yet (its buyer inactive) stays untold, and is
    told to a watcher added later; telling again adds nothing."""
    order = _order(buyer=UserFactory(username="gone", is_active=False))
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False)
    result = alerts.scan_orders(today=D("2023-05-01"))
    assert sum(result.new_alerts.values()) == 2  # past need-by, over the lead-time limit
    assert result.notices == 0
    assert not AlertNotice.objects.exists()

    assert alerts.alert_notices_create() == 0  # nobody may hear of it yet
    watcher = UserFactory(username="carol")
    order.watchers.add(watcher)
    assert alerts.alert_notices_create(order_ids=[order.pk + 1]) == 0  # another order
    assert alerts.alert_notices_create(order_ids=[order.pk]) == 2
    assert alerts.alert_notices_create() == 0
    assert set(AlertNotice.objects.values_list("recipient_id", "round")) == {(watcher.pk, 0)}


def test_a_digest_lists_the_worst_orders_first_and_counts_the_rest(
    mailoutbox: list, settings: Any
) -> None:
    """After an outage a buyer can have thousands of new alerts: the digest lists
    DIGEST_MAX_ORDERS of them, worst first, and links to the rest; every alert counts as
    told once it is sent."""
    settings.DIGEST_MAX_ORDERS = 2
    buyer = UserFactory(username="alice")
    december = [_order(buyer=buyer, need_by=None) for _ in range(3)]  # warnings only
    late = _order(buyer=buyer, need_by=D("2023-06-30"))  # past its need-by: critical
    for order in [*december, late]:
        services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))

    call_command("scan_slips", "--date", "2023-05-01", stdout=StringIO())

    [mail] = mailoutbox
    listed = [o.po_number for o in [*december, late] if o.po_number in mail.body]
    assert listed == [december[0].po_number, late.po_number]
    assert mail.body.index(late.po_number) < mail.body.index(december[0].po_number)
    assert "Delivery dates slipped on 4 orders:" in mail.body
    assert "... and 2 more orders with new alerts, not listed here: " in mail.body
    assert "/admin/orders/slipalert/?acknowledged=no" in mail.body
    html = mail.alternatives[0][0]
    assert "2 more orders with new alerts</a>" in html
    assert mail.subject.startswith(f"[GPU slip] {late.po_number}, {december[0].po_number} +2 more:")
    assert not SlipAlert.objects.filter(notified_at__isnull=True).exists()
    assert not AlertNotice.objects.filter(email__isnull=True).exists()


def test_building_digests_takes_the_same_queries_for_few_orders_or_many(
    settings: Any, django_assert_max_num_queries: Any
) -> None:
    settings.DIGEST_MAX_ORDERS = 3
    buyer, watcher = UserFactory(username="alice"), UserFactory(username="carol")

    def digest_queries(n: int) -> int:
        for _ in range(n):
            order = _order(buyer=buyer)
            order.watchers.add(watcher)
            services.quote_add(
                order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False
            )
        alerts.scan_orders(today=D("2023-05-01"))
        alerts.alert_notices_create()
        with CaptureQueriesContext(connection) as ctx:
            assert len(notifications.build_digests()) == 2
        return len(ctx.captured_queries)

    assert digest_queries(2) == digest_queries(12)


def test_a_watcher_removed_before_the_digest_is_built_is_skipped(mailoutbox: list) -> None:
    watcher = UserFactory(username="carol")
    order = _order()
    order.watchers.add(watcher)
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()  # for buyer and watcher
    order.watchers.remove(watcher)

    for email_id in notifications.build_digests():
        notifications.send_outbox_email(email_id)

    assert [m.to for m in mailoutbox] == [[order.buyer.email]]
    skipped = AlertNotice.objects.filter(recipient=watcher)
    assert skipped.exists()
    assert all(n.skipped_reason for n in skipped)


def test_unacknowledged_alerts_escalate_once_per_period_to_buyer_and_managers(
    mailoutbox: list, settings: Any
) -> None:
    settings.PROCUREMENT_MANAGERS = ["head-of-procurement@gpu-buyers.example"]
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    call_command("scan_slips", "--date", "2023-05-01", stdout=StringIO())
    assert len(mailoutbox) == 1
    SlipAlert.objects.update(detected_at=timezone.make_aware(timezone.datetime(2023, 5, 1, 7)))

    def scan(day: str) -> list[str]:
        before = len(mailoutbox)
        call_command("scan_slips", "--date", day, stdout=StringIO())
        return sorted(m.to[0] for m in mailoutbox[before:])

    assert scan("2023-05-07") == []  # day 6: not yet
    reminders = scan("2023-05-08")  # day 7: first reminder
    assert reminders == sorted(["head-of-procurement@gpu-buyers.example", order.buyer.email])
    assert mailoutbox[-1].subject.startswith("[GPU slip] Reminder: ")
    assert "Still unacknowledged after 7 days or more" in mailoutbox[-1].body
    assert scan("2023-05-09") == []  # same period: once
    assert len(scan("2023-05-15")) == 2  # next period

    alerts.alerts_acknowledge(
        alert_ids=list(order.alerts.values_list("pk", flat=True)), user=order.buyer
    )
    assert scan("2023-05-22") == []  # acknowledged: no more reminders


def test_smtp_down_keeps_the_alert_unsent_until_it_is_back(mailoutbox: list, settings: Any) -> None:
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    with socket.socket() as s:  # a real port with nothing listening: connection refused
        s.bind(("127.0.0.1", 0))
        closed_port = s.getsockname()[1]
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST, settings.EMAIL_PORT = "127.0.0.1", closed_port

    out, err = StringIO(), StringIO()
    call_command("scan_slips", "--date", "2023-05-01", stdout=out, stderr=err)
    assert "Emails sent: 0 (failed, will retry: 1)" in out.getvalue()
    assert "kept in the outbox" in err.getvalue()
    email = OutboxEmail.objects.get()
    assert (email.status, email.attempts) == ("failed", 1)
    assert "ConnectionRefusedError" in email.last_error
    assert not order.alerts.filter(notified_at__isnull=False).exists()

    settings.EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
    OutboxEmail.objects.update(created_at=timezone.now() - timedelta(minutes=5))
    for email_id in notifications.sweep_outbox():
        notifications.send_outbox_email(email_id)
    for email_id in notifications.sweep_outbox():  # nothing left to send
        notifications.send_outbox_email(email_id)

    assert len(mailoutbox) == 1
    email.refresh_from_db()
    assert (email.status, email.attempts) == ("sent", 2)
    assert not order.alerts.filter(notified_at__isnull=True).exists()


def test_a_digest_is_sent_by_one_sender_only(mailoutbox: list) -> None:
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()
    [email_id] = notifications.build_digests()
    assert notifications.send_outbox_email(email_id) is True
    assert notifications.send_outbox_email(email_id) is False
    assert len(mailoutbox) == 1


def test_a_sender_that_died_mid_send_is_retried_by_the_sweep(settings: Any) -> None:
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()
    [email_id] = notifications.build_digests()
    long_ago = timezone.now() - timedelta(hours=1)
    OutboxEmail.objects.filter(pk=email_id).update(
        status="sending", claimed_at=long_ago, created_at=long_ago
    )
    assert notifications.sweep_outbox() == [email_id]
    assert OutboxEmail.objects.get(pk=email_id).status == "failed"


def test_a_digest_to_an_address_that_never_works_stops_once_the_user_is_deactivated() -> None:
    """README, Faults and recovery: a refused digest is retried until accepted; for an address
    that will never work, deactivate the user and delete the digest in the admin."""
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"))
    alerts.scan_orders(today=D("2023-05-01"))
    alerts.alert_notices_create()
    [email_id] = notifications.build_digests()
    OutboxEmail.objects.filter(pk=email_id).update(
        status="failed", attempts=11, last_error="SMTPRecipientsRefused: 550 5.1.1 No such user"
    )
    order.buyer.is_active = False
    order.buyer.save()
    OutboxEmail.objects.get(pk=email_id).delete()  # what the admin's delete does

    notices = AlertNotice.objects.filter(alert__order=order)
    assert notices.exists()
    assert not notices.exclude(email=None).exists()  # back to waiting for a digest
    assert notifications.build_digests() == []
    assert set(notices.values_list("skipped_reason", flat=True)) == {
        notifications.SKIPPED_NO_ACCESS
    }
    assert notifications.sweep_outbox() == []


def test_scan_slips_prints_counts_per_rule() -> None:
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-05-15"))
    services.quote_add(order=order, quoted_on=D("2023-07-21"), delivery_date=D("2023-12-15"))
    out = StringIO()
    call_command("scan_slips", "--date", "2023-07-21", stdout=out)
    assert out.getvalue().splitlines() == [
        "Scanned 1 open orders.",
        "Findings by rule:",
        "  lead_time_multiplied: 1",
        "  lead_time_over_limit: 1",
        "  december_delivery: 1",
        "  past_need_by: 1",
        "  overdue: 0",
        "  price_rise: 0",
        "New alerts: 4",
        "Open alerts nobody may be told of: 0",
        "Emails sent: 1",
    ]


def test_the_daily_scan_counts_the_open_alerts_nobody_may_be_told_of(
    mailoutbox: list, freezer_today: Any, caplog: Any
) -> None:
    """Alerts whose buyer is inactive or has no address, with no watcher, reach nobody: the
    daily task says how many, in its result, its log and its ScanRun, and scan_slips too."""
    freezer_today("2023-05-01")
    told = _order()
    gone = _order(buyer=UserFactory(username="gone", is_active=False))
    silent = _order(buyer=UserFactory(username="silent", email=""))
    for order in (told, gone, silent):
        services.quote_add(
            order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False
        )

    with caplog.at_level("INFO", logger="orders.tasks"):
        result = tasks.scan_open_orders()

    # Two rules fire on each order (past need-by, over the lead-time limit).
    assert result["new_alerts"] == 6
    assert result["untold_alerts"] == 4
    assert ScanRun.objects.get().findings["untold_alerts"] == 4
    assert "4 open slip alert(s) nobody may be told of" in caplog.text
    assert set(notifications.untold_alerts().values_list("order_id", flat=True)) == {
        gone.pk,
        silent.pk,
    }

    # A watcher for one of them, an acknowledgement for the other's first alert.
    gone.watchers.add(UserFactory(username="carol"))
    alerts.alerts_acknowledge(alert_ids=[silent.alerts.order_by("pk")[0].pk], user=None)
    out = StringIO()
    call_command("scan_slips", "--date", "2023-05-01", stdout=out)
    assert (
        "Open alerts nobody may be told of: 1 (buyers and watchers inactive, without email or "
        "access)" in out.getvalue().splitlines()
    )
    assert ScanRun.objects.order_by("pk").last().findings["untold_alerts"] == 1
    # A closed alert is not news: superseded or resolved, nobody needs telling.
    silent.alerts.filter(acknowledged_at__isnull=True).update(
        status=SlipAlert.Status.RESOLVED, closed_at=timezone.now(), closed_reason="test"
    )
    assert not notifications.untold_alerts().exists()


def test_a_deactivated_buyer_is_sent_neither_news_nor_reminders(
    mailoutbox: list, freezer_today: Any
) -> None:
    freezer_today("2023-05-01")
    order = _order()
    services.quote_add(order=order, quoted_on=PLACED, delivery_date=D("2023-12-15"), check=False)
    call_command("scan_slips", stdout=StringIO())
    assert [m.to for m in mailoutbox] == [[order.buyer.email]]
    order.buyer.is_active = False
    order.buyer.save()
    services.quote_add(
        order=order, quoted_on=D("2023-05-02"), delivery_date=D("2024-01-31"), check=False
    )

    # A week on: reminders are due for the first alerts, and the new quote raises new ones.
    freezer_today("2023-05-09")
    call_command("scan_slips", stdout=StringIO())

    assert len(mailoutbox) == 1
    assert not AlertNotice.objects.filter(round__gt=0).exists()
    assert not AlertNotice.objects.filter(alert__quote__quoted_on=D("2023-05-02")).exists()


def _scan_queries(batch_size: int) -> int:
    SlipAlert.objects.all().delete()
    with CaptureQueriesContext(connection) as ctx:
        alerts.scan_orders(today=D("2023-07-21"), batch_size=batch_size)
    statements = [q["sql"] for q in ctx.captured_queries]
    if connection.vendor == "sqlite":
        # SQLite caps parameters per statement, so Django splits a large bulk INSERT in
        # several; PostgreSQL takes each in one statement and is counted in full.
        statements = [sql for sql in statements if not sql.startswith("INSERT")]
    return len(statements)


def _orders_with_quotes(n: int) -> None:
    gpu = GpuModelFactory(name="A100 80GB SXM")
    buyer = UserFactory()
    for _ in range(n):
        order = PurchaseOrderFactory(placed_on=PLACED, buyer=buyer, need_by=D("2023-09-30"))
        OrderLineFactory(order=order, gpu_model=gpu)
        for quoted_on, due in ((PLACED, "2023-05-15"), (D("2023-07-21"), "2023-12-15")):
            # check=False: only the scans under test judge these orders.
            services.quote_add(order=order, quoted_on=quoted_on, delivery_date=D(due), check=False)


def test_the_scan_runs_a_fixed_number_of_queries_per_batch() -> None:
    _orders_with_quotes(10)
    one_batch_of_10 = _scan_queries(batch_size=100)
    _orders_with_quotes(50)
    one_batch_of_60 = _scan_queries(batch_size=100)
    two_batches_of_30 = _scan_queries(batch_size=30)
    three_batches_of_20 = _scan_queries(batch_size=20)
    assert one_batch_of_10 == one_batch_of_60
    # Each scan also has a fixed part: resolving closed orders' alerts, the last (empty)
    # batch query that ends the loop.
    per_batch = two_batches_of_30 - one_batch_of_60
    assert per_batch > 0
    assert three_batches_of_20 == one_batch_of_60 + 2 * per_batch
    assert SlipAlert.objects.count() == 60 * 4


def test_the_stored_schedule_is_the_python_rule_on_the_history() -> None:
    """The columns orders.schedules stores, written by quotes added one at a time, hold what
    orders.slips.schedule() / line_schedule() pick from the history: the order's dates, and
    per line both dates and the re-quote count."""
    rng = random.Random(20230414)
    gpus = [GpuModelFactory(name=n) for n in ("A100 80GB SXM", "H100 SXM", "A10")]
    for _ in range(40):
        order = PurchaseOrderFactory(placed_on=PLACED)
        lines = [
            OrderLineFactory(order=order, gpu_model=g) for g in rng.sample(gpus, rng.randint(0, 3))
        ]
        quoted_on = PLACED
        for _ in range(rng.randint(0, 5)):
            quoted_on += timedelta(days=rng.randint(0, 20))
            services.quote_add(
                order=order,
                line=rng.choice([None, *lines]),
                quoted_on=quoted_on,
                delivery_date=quoted_on + timedelta(days=rng.randint(0, 250)),
            )
    orders = PurchaseOrder.objects.all().prefetch_related("quotes", "lines")
    for order in orders:
        plan = schedule(
            [Quote(q.pk, q.quoted_on, q.delivery_date, q.line_id) for q in order.quotes.all()],
            [line.pk for line in order.lines.all()],
        )
        expected = (
            (plan.baseline.delivery_date, plan.current.delivery_date) if plan else (None, None)
        )
        assert (order.baseline_delivery_date, order.current_delivery_date) == expected
    # Per line, what the orders CSV shows: both dates and the re-quote count.
    lines = OrderLine.objects.all().prefetch_related("order__quotes")
    for line in lines:
        quotes = sorted(line.order.quotes.all(), key=lambda q: (q.quoted_on, q.pk))
        line_plan = line_schedule(quotes, line.pk)
        expected_line = (None, None, 0)
        if line_plan:
            baseline, current, applicable = line_plan
            expected_line = (baseline.delivery_date, current.delivery_date, applicable - 1)
        got = (line.baseline_delivery_date, line.current_delivery_date, line.requote_count)
        assert got == expected_line, line


def test_the_scans_schedule_query_agrees_with_the_python_rule() -> None:
    """orders.alerts.order_schedules() reads, per open order, what orders.slips.schedule()
    picks from the same quotes (baseline and current date, and the current quote: ties
    included), and sees the same receipts, on random orders with several lines, line-level
    quotes, same-day and same-date quotes, and closed orders; for a pk range and an id list."""
    rng = random.Random(20230615)
    gpus = [GpuModelFactory(name=n) for n in ("A100 80GB SXM", "H100 SXM", "A10")]
    for _ in range(60):
        order = PurchaseOrderFactory(placed_on=PLACED)
        lines = [
            OrderLineFactory(order=order, gpu_model=g, quantity=8)
            for g in rng.sample(gpus, rng.randint(0, 3))
        ]
        quoted_on, given = PLACED, set()
        for _ in range(rng.randint(0, 5)):
            quoted_on += timedelta(days=rng.choice([0, 0, 3, 20]))
            line = rng.choice([None, *lines])
            # Few distinct dates, so lines and quotes tie often.
            due = max(quoted_on, PLACED + timedelta(days=rng.choice([30, 30, 90, 200])))
            if (line, quoted_on, due) in given:  # the same promise twice is refused
                continue
            given.add((line, quoted_on, due))
            services.quote_add(
                order=order, line=line, quoted_on=quoted_on, delivery_date=due, check=False
            )
        for line in lines:
            if rng.random() < 0.4:
                services.delivery_record(
                    line=line, quantity=rng.choice([3, 8]), delivered_on=PLACED
                )
        if rng.random() < 0.1:
            PurchaseOrder.objects.filter(pk=order.pk).update(status="cancelled")

    expected = {}
    orders = PurchaseOrder.objects.open().prefetch_related("quotes", "lines__deliveries")
    for order in orders:
        lines = list(order.lines.all())
        plan = schedule(
            [Quote(q.pk, q.quoted_on, q.delivery_date, q.line_id) for q in order.quotes.all()],
            [line.pk for line in lines],
        )
        if plan is None:
            continue
        received = bool(lines) and all(
            sum(d.quantity for d in line.deliveries.all()) >= line.quantity for line in lines
        )
        expected[order.pk] = (
            order.placed_on,
            order.need_by,
            plan.baseline.delivery_date,
            plan.current.delivery_date,
            plan.current.id,
            int(received),
        )
    assert len(expected) > 30
    # Fully received orders close (status "received"); partly received ones stay open.
    assert PurchaseOrder.objects.filter(status="partially_received", pk__in=expected).exists()
    pks = sorted(PurchaseOrder.objects.values_list("pk", flat=True))
    by_range = alerts.order_schedules((pks[0], pks[-1], None))
    assert {row[0]: tuple(row[1:]) for row in by_range} == expected
    some = pks[::3]
    by_ids = alerts.order_schedules((some[0], some[-1], some))
    assert {row[0]: tuple(row[1:]) for row in by_ids} == {
        pk: row for pk, row in expected.items() if pk in some
    }


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_two_scans_at_once_create_each_alert_and_email_once(mailoutbox: list) -> None:
    _orders_with_quotes(30)

    def scan() -> None:
        result = alerts.run_full_scan(today=D("2023-07-21"))
        for email_id in result.email_ids:
            notifications.send_outbox_email(email_id)

    outcomes = run_at_once(scan)

    assert outcomes == [None, None]
    assert SlipAlert.objects.count() == 30 * 4
    assert AlertNotice.objects.count() == 30 * 4
    assert OutboxEmail.objects.filter(status="sent").count() == len(mailoutbox)
    assert sum(len(m.body.split("[CRITICAL]")) - 1 for m in mailoutbox) == 30  # past_need_by
    assert len({m.to[0] for m in mailoutbox}) == 1


def test_code_labels_match_rule_codes() -> None:
    assert {c.value for c in Code} == set(SlipAlert.Code.values)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_batches_on_several_connections_find_what_one_connection_finds() -> None:
    _orders_with_quotes(25)
    parallel = alerts.scan_orders(today=D("2023-07-21"), batch_size=4, workers=3)
    found = set(SlipAlert.objects.values_list("order_id", "code", "quote_id"))
    notices = AlertNotice.objects.count()
    SlipAlert.objects.all().delete()
    serial = alerts.scan_orders(today=D("2023-07-21"), batch_size=4, workers=1)
    assert (
        parallel.as_dict()
        == serial.as_dict()
        == {
            "orders": 25,
            "findings": {
                "lead_time_multiplied": 25,
                "lead_time_over_limit": 25,
                "december_delivery": 25,
                "past_need_by": 25,
            },
            "new_alerts": 100,
            "superseded": 0,
            "resolved": 0,
            "reopened": 0,
            "notices": 0,
            "emails": 0,
            "untold_alerts": 0,
        }
    )
    assert set(SlipAlert.objects.values_list("order_id", "code", "quote_id")) == found
    assert notices == 0  # the scan records alerts; who hears of them is the next step's
    assert alerts.alert_notices_create() == AlertNotice.objects.count() == 100


def test_a_scan_inside_a_transaction_stays_on_its_connection() -> None:
    """Other connections could not see the uncommitted orders (here: the test's)."""
    _orders_with_quotes(5)
    result = alerts.scan_orders(today=D("2023-07-21"), batch_size=2, workers=4)
    assert (result.orders, sum(result.new_alerts.values())) == (5, 20)
