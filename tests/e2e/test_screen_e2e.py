"""The admin and the dashboard pages on a laptop screen (1366x768), as the demo's admin user
sees them: no page scrolls sideways, and no object-tool button covers a page's title."""

from __future__ import annotations

import subprocess
import sys
from typing import Any
from urllib.parse import urlsplit

from tests.e2e.conftest import ROOT, App

LAPTOP = {"width": 1366, "height": 768}
ADMIN_PASSWORD = "laptop-screen-check"

# How much wider than the window the page is, and the boxes that scroll sideways inside it
# (the admin's result lists, the dashboard's tables) because their content is wider.
OVERFLOW = "document.documentElement.scrollWidth - document.documentElement.clientWidth"
SCROLLING_BOXES = """() => [...document.querySelectorAll("body *")].filter(e => {
    const x = getComputedStyle(e).overflowX;
    return (x === "auto" || x === "scroll") && e.scrollWidth > e.clientWidth + 1;
}).map(e => `${e.tagName.toLowerCase()}${e.id ? "#" + e.id : ""}.${e.className} ` +
    `by ${e.scrollWidth - e.clientWidth}px`)"""
# Object-tool buttons drawn over the letters of the page's title.
COVERED_TITLE = """() => {
    const title = document.querySelector("#content h1");
    if (!title) return [];
    const range = document.createRange();
    range.selectNodeContents(title);
    const letters = [...range.getClientRects()];
    return [...document.querySelectorAll(".object-tools a")].filter(a => {
        const b = a.getBoundingClientRect();
        return letters.some(t =>
            b.left < t.right && t.left < b.right && b.top < t.bottom && t.top < b.bottom);
    }).map(a => a.innerText);
}"""
FIRST_ORDER = """
from orders.models import PurchaseOrder
result = PurchaseOrder.objects.order_by("po_number").values_list("pk", flat=True).first()
"""


def _ensure_admin(app: App) -> None:
    subprocess.run(
        [sys.executable, "manage.py", "ensure_admin"],
        cwd=ROOT,
        env=app.env | {"ADMIN_PASSWORD": ADMIN_PASSWORD},
        check=True,
        capture_output=True,
        timeout=120,
    )


def _admin_pages(page: Any) -> list[str]:
    """Every changelist the admin index links to, and the report pages in its header."""
    page.goto("/admin/")
    links = page.eval_on_selector_all(
        "#content-main th[scope=row] a, nav.procurement-reports a",
        "links => links.map(a => a.getAttribute('href'))",
    )
    return list(dict.fromkeys(urlsplit(link).path for link in links))


def test_every_page_fits_a_laptop_screen(browser: Any, app: App, screenshot: Any) -> None:
    _ensure_admin(app)
    context = browser.new_context(base_url=app.base_url, viewport=LAPTOP)
    context.set_default_timeout(15_000)
    page = context.new_page()
    try:
        page.goto("/admin/login/")
        page.get_by_label("Username").fill("admin")
        page.get_by_label("Password").fill(ADMIN_PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.wait_for_url(f"{app.base_url}/admin/")

        order = app.query(FIRST_ORDER)
        own = ["/", "/lead-times/", "/prices/", "/vendors/", f"/orders/{order}/timeline/"]
        admin_pages = _admin_pages(page)
        assert "/admin/orders/purchaseorder/" in admin_pages
        assert len([p for p in admin_pages if p.startswith("/admin/")]) >= 10, admin_pages
        pages = list(
            dict.fromkeys([*own, *admin_pages, f"/admin/orders/purchaseorder/{order}/change/"])
        )
        overflowing, covered = [], []
        for path in pages:
            response = page.goto(path)
            assert response.status == 200, path
            page.wait_for_load_state("load")
            wider = page.evaluate(OVERFLOW)
            if wider > 0:
                overflowing.append(f"{path} ({wider}px too wide)")
            if boxes := page.evaluate(SCROLLING_BOXES):
                overflowing.append(f"{path} (scrolls sideways: {boxes})")
            if hidden := page.evaluate(COVERED_TITLE):
                covered.append(f"{path}: {hidden}")
            name = path.strip("/").replace("/", "-") or "dashboard"
            screenshot(page, f"laptop-{name}")
        problems = [f"wider than the screen: {overflowing}"] if overflowing else []
        problems += [f"object tools over the title: {covered}"] if covered else []
        assert not problems, "; ".join(problems)
    finally:
        context.close()
