"""A buyer's session in a real browser: log in, check the dashboard against the database,
open an order's timeline and see its chart drawn, filter, export CSV, log out."""

from __future__ import annotations

import csv
import re
from pathlib import Path
from typing import Any

from orders.csv_format import ORDER_COLUMNS
from tests.e2e.conftest import App

OPEN_ALERTS_BY_CODE = """
from django.db.models import Count
from orders.models import PurchaseOrder, SlipAlert, open_alert_q
alerts = SlipAlert.objects.filter(
    open_alert_q(), order__status__in=PurchaseOrder.OPEN_STATUSES, {where}
)
result = {{
    row["code"]: row["n"]
    for row in alerts.values("code").annotate(n=Count("pk")).order_by()
}}
"""

SLIPPING_LINES = """
from orders.models import OrderLine, PurchaseOrder
orders = PurchaseOrder.objects.open().slipping().filter({where})
result = sorted(
    [po, gpu] for po, gpu in OrderLine.objects.filter(order__in=orders.values("pk"))
    .values_list("order__po_number", "gpu_model__name")
)
"""


def log_in(page: Any, app: App) -> None:
    page.goto("/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/$"))
    page.get_by_label("Username").fill(app.username)
    page.get_by_label("Password").fill(app.password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{app.base_url}/")


def counts_on_page(page: Any) -> dict[str, int]:
    counts = {}
    for row in page.locator("#alert-counts tbody tr").all():
        n = int(row.locator('[data-count="alerts"]').inner_text())
        if n:
            counts[row.get_attribute("data-code")] = n
    return counts


def po_numbers(page: Any) -> list[str]:
    return page.locator("#slipping-orders tbody th a").all_inner_texts()


def wait_for_charts(page: Any) -> int:
    """Wait until every chart on the page is drawn; return how many there are."""
    canvases = page.locator("canvas[data-chart]")
    count = canvases.count()
    for i in range(count):
        canvases.nth(i).and_(page.locator('[data-drawn="true"]')).wait_for()
    return count


def drawn_pixels(page: Any, selector: str) -> int:
    """Non-transparent pixels on a canvas: a chart really painted, not an empty box."""
    return page.eval_on_selector(
        selector,
        """canvas => {
            const context = canvas.getContext("2d");
            const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
            let painted = 0;
            for (let i = 3; i < data.length; i += 4) if (data[i] > 0) painted++;
            return painted;
        }""",
    )


def test_a_buyers_session(page: Any, app: App, screenshot: Any, tmp_path: Path) -> None:
    log_in(page, app)

    # The dashboard opens on Alice's own orders; its counts are the database's.
    assert page.get_by_label("Buyer").locator("option:checked").inner_text() == "Alice Moreau"
    mine = app.query(OPEN_ALERTS_BY_CODE.format(where="order__buyer__username='alice'"))
    assert mine
    assert counts_on_page(page) == mine
    critical = mine.get("past_need_by", 0) + mine.get("overdue", 0)
    assert page.locator('[data-severity="critical"]').inner_text() == str(critical)
    assert po_numbers(page) == ["PO-2023-0412", "PO-2023-0418", "PO-2023-0405"]
    screenshot(page, "dashboard")

    # Her worst order's timeline: the chart is drawn, with the need-by line and the alerts.
    page.get_by_role("link", name="PO-2023-0412").click()
    page.wait_for_url(re.compile(r"/orders/\d+/timeline/$"))
    assert page.get_by_role("heading", level=1).inner_text() == "PO-2023-0412 timeline"
    assert wait_for_charts(page) == 1
    labels = page.evaluate(
        "Chart.getChart(document.getElementById('order-timeline')).data.datasets.map(d => d.label)"
    )
    assert labels == ["Quotes: Whole order", "Need by 2023-09-30", "Alerts raised by this quote"]
    assert drawn_pixels(page, "#order-timeline") > 1000
    assert page.locator("#quotes-table tbody tr").count() == 3
    screenshot(page, "order-timeline")

    # Everyone's orders, then one vendor's: a filter is a GET form.
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Dashboard").click()
    page.get_by_label("Buyer").select_option(label="All buyers")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"buyer=$|buyer=&"))
    everyone = app.query(OPEN_ALERTS_BY_CODE.format(where="order__isnull=False"))
    assert counts_on_page(page) == everyone
    assert len(po_numbers(page)) == 4
    page.get_by_label("Vendor").select_option(label="Pacific Silicon Distribution")
    page.get_by_role("button", name="Apply filters").click()
    page.wait_for_url(re.compile(r"vendor=\d+"))
    assert po_numbers(page) == ["PO-2023-0412", "PO-2023-0320"]

    # The export is the same selection: one row per order line.
    with page.expect_download() as info:
        page.get_by_role("link", name="Export CSV").click()
    download = info.value
    assert download.suggested_filename.startswith("slipping-orders-")
    path = tmp_path / download.suggested_filename
    download.save_as(path)
    with path.open(newline="", encoding="utf-8") as f:
        header, *rows = list(csv.reader(f))
    assert tuple(header) == ORDER_COLUMNS
    expected = app.query(SLIPPING_LINES.format(where="vendor__name='Pacific Silicon Distribution'"))
    po, gpu = header.index("po_number"), header.index("gpu_model")
    assert sorted([row[po], row[gpu]] for row in rows) == expected
    assert len(rows) == 2

    # Log out: back on the login page, and the dashboard asks for it again.
    page.get_by_role("button", name="Log out").click()
    page.wait_for_url(f"{app.base_url}/accounts/login/")
    page.goto("/")
    page.wait_for_url(re.compile(r"/accounts/login/\?next=/$"))
    screenshot(page, "login")


def test_every_page_draws_its_charts(page: Any, app: App, screenshot: Any) -> None:
    log_in(page, app)
    for path, name, charts in (
        ("/lead-times/", "lead-times", 3),
        ("/prices/", "prices", 4),
        ("/vendors/?sort=-mean_slip_days", "vendors", 0),
    ):
        page.goto(path)
        assert wait_for_charts(page) == charts, path
        for i in range(charts):
            canvas = page.locator("canvas[data-chart]").nth(i)
            assert canvas.get_attribute("role") == "img"
            assert canvas.get_attribute("aria-label")
            assert drawn_pixels(page, f"#{canvas.get_attribute('id')}") > 1000
        screenshot(page, name)
    # The scorecard sorted worst slip first, with its bars.
    assert page.locator("#scorecards tbody th").first.inner_text() == "FlipCard GPU Resale"
    assert page.locator("#scorecards .bar.slip").count() == 3


def test_the_lead_time_chart_climbs_from_one_month_to_three(page: Any, app: App) -> None:
    log_in(page, app)
    page.goto("/lead-times/")
    wait_for_charts(page)
    medians = page.evaluate(
        "Chart.getChart(document.getElementById('lead-times-all')).data.datasets[0].data"
    )
    assert medians[0] <= 35
    assert max(medians) >= 90


def test_the_dashboard_fits_a_phone(browser: Any, app: App, screenshot: Any) -> None:
    context = browser.new_context(
        base_url=app.base_url, viewport={"width": 390, "height": 844}, device_scale_factor=1
    )
    page = context.new_page()
    try:
        log_in(page, app)
        # Nothing wider than the screen but the tables, which scroll in their own box.
        overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
        assert overflow <= 0
        screenshot(page, "dashboard-phone")
    finally:
        context.close()
