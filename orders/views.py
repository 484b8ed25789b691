"""Read-only pages for buyers and managers: the dashboard, lead-time and price trends, an
order's timeline and the vendor scorecards. Thin: figures come from orders.dashboard and
orders.scorecards, chart data from orders.charts; every page runs a fixed number of queries
whatever the data size.

Every page needs a login and view permission on orders (each role has it; an account
without a role gets 403). What lists or counts orders (the dashboard, its CSV, a timeline)
shows only the orders the user may see (orders.permissions); the trends and scorecards are
figures about vendors and the market over every order, and name no order or buyer. Price
figures (the price trend, the scorecards' price change) are made from the prices the user may
see (orders.permissions.visible_prices): the same for everyone who sees every order, and for
a buyer who sees only their own, free of other orders' prices."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.decorators import login_required, permission_required
from django.contrib.auth.mixins import LoginRequiredMixin, PermissionRequiredMixin
from django.http import Http404, HttpRequest, HttpResponse
from django.urls import reverse
from django.views.generic import TemplateView

from orders import charts, dashboard, exports, permissions
from orders.admin_export import csv_response
from orders.dates import today
from orders.forms import SCORECARD_SORTS, DashboardFilterForm, ScorecardSortForm
from orders.paging import CountedPaginator
from orders.prices import threshold_percent
from orders.scorecards import Scorecard, scorecards, shown_number, shown_percent


class OrdersPage(LoginRequiredMixin, PermissionRequiredMixin, TemplateView):
    """A page for people with a role: anonymous visitors go to the login page, accounts
    without view permission on orders get 403."""

    # Django's AccessMixin: the login page for anonymous visitors, 403 for the logged-in.
    permission_required = permissions.VIEW


SLIPPING_ORDERS_PER_PAGE = 50


class DashboardView(OrdersPage):
    """Open alerts by rule and severity, and the slipping orders of the selection, worst
    first, with an export of the same selection."""

    template_name = "orders/dashboard.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        form = DashboardFilterForm.for_request(self.request.GET, self.request.user)
        selection = form.selection()
        query = form.query_string()
        # A page at a time: with every order slipping (the shortage), listing them all is
        # tens of thousands of rows (bench/load.sh); the CSV export has the whole list.
        page = CountedPaginator(
            dashboard.slipping_orders_for_display(selection),
            SLIPPING_ORDERS_PER_PAGE,
            count_of=lambda: dashboard.slipping_order_count(selection),
        ).get_page(self.request.GET.get("page"))
        return super().get_context_data(
            form=form,
            selection=selection,
            alerts=dashboard.open_alert_counts(selection),
            page=page,
            orders=page.object_list,
            page_query=query,
            export_url=f"{reverse('orders:dashboard_csv')}?{query}",
            can_export=self.request.user.has_perm("orders.view_purchaseorder"),
            **kwargs,
        )


@login_required
@permission_required(permissions.VIEW, raise_exception=True)
def dashboard_csv(request: HttpRequest) -> HttpResponse:
    """The orders file (orders.exports, the one CSV writer; one row per order line) of exactly
    the slipping orders the dashboard lists for these filters (of the orders the user may
    see), streamed. View permission on orders, as the admin export; `?bom=1` adds a byte
    order mark for Excel."""
    form = DashboardFilterForm.for_request(request.GET, request.user)
    if not form.is_valid():
        errors = "; ".join(f"{name}: {' '.join(e)}" for name, e in form.errors.items())
        return HttpResponse(
            f"Bad filter: {errors}\n", status=400, content_type="text/plain; charset=utf-8"
        )
    orders = dashboard.slipping_orders(form.selection())  # the selection carries the viewer
    return csv_response(
        exports.orders_csv(orders, bom=request.GET.get("bom") == "1"),
        filename=f"slipping-orders-{today().isoformat()}.csv",
    )


class LeadTimesView(OrdersPage):
    """Median and 90th-percentile quoted lead time by month: all quotes, per GPU model, per
    vendor. Six queries (two a chart: its tally and its labels)."""

    template_name = "orders/lead_times.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        sections = []
        for grouping, title, group_label in (
            ("all", "All quotes", "Quotes"),
            ("gpu_model", "By GPU model", "GPU model"),
            ("vendor", "By vendor", "Vendor"),
        ):
            series = dashboard.lead_time_trend(grouping)
            sections.append(
                {
                    "id": f"lead-times-{grouping.replace('_', '-')}",
                    "title": title,
                    "group_label": group_label,
                    "caption": f"Median and 90th percentile quoted lead time by month, "
                    f"{title.lower()}",
                    "series": series,
                    # The reference lines make the one-month -> three-month climb plain.
                    "chart": charts.lead_time_chart(series, references=grouping == "all"),
                }
            )
        return super().get_context_data(sections=sections, percentile=90, **kwargs)


class PricesView(OrdersPage):
    """Unit price per GPU model and vendor over time, with the change of the latest price over
    the lowest in the price-alert window, of the prices the user may see. One query."""

    template_name = "orders/prices.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        price_charts = dashboard.price_trend(viewer=self.request.user)
        return super().get_context_data(
            charts=[
                {
                    "id": f"prices-{i}",
                    "chart": chart,
                    "spec": charts.price_chart(chart),
                    "caption": f"Unit price of {chart.gpu_model} over time, by vendor",
                }
                for i, chart in enumerate(price_charts, start=1)
            ],
            window_days=settings.PRICE_RISE_WINDOW_DAYS,
            threshold=threshold_percent(),
            **kwargs,
        )


class OrderTimelineView(OrdersPage):
    """Every quote of one order on a chart (quoted on x, promised date y), with the need-by
    line, receipts and alerts. Five queries."""

    template_name = "orders/order_timeline.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        timeline = dashboard.order_timeline(self.kwargs["pk"], viewer=self.request.user)
        if timeline is None:  # or not one this user may see: the same answer
            raise Http404("No such order.")
        return super().get_context_data(
            timeline=timeline,
            order=timeline.order,
            chart=charts.order_timeline_chart(timeline),
            caption=f"Quoted delivery dates of {timeline.order.po_number} by the day they were "
            "quoted, with the need-by date, receipts and alerts",
            **kwargs,
        )


def _scorecard_row(card: Scorecard, longest_slip: float) -> dict[str, Any]:
    """A table row: figures as shown, and bar lengths in percent (on-time rate; mean slip
    against the longest mean slip of all vendors)."""
    slip = card.mean_slip_days
    return {
        "card": card,
        "on_time": shown_percent(card.on_time_rate),
        "on_time_latest": shown_percent(card.on_time_rate_latest),
        "mean_slip": shown_number(slip),
        "median_slip": shown_number(card.median_slip_days),
        "mean_requotes": shown_number(card.mean_requotes),
        "open_alerts": shown_percent(card.open_alert_share),
        "on_time_bar": None if card.on_time_rate is None else round(100 * card.on_time_rate),
        "slip_bar": round(100 * max(slip, 0) / longest_slip) if slip and longest_slip else 0,
    }


def _sort_value(card: Scorecard, key: str) -> Any:
    return card.vendor.name.casefold() if key == "vendor" else getattr(card, key)


class VendorsView(OrdersPage):
    """The vendor scorecards as a table sortable by any figure (server-side, so it works
    without scripts), with a bar per vendor for the on-time rate and the mean slip. Five
    queries (orders.scorecards.scorecards)."""

    template_name = "orders/vendors.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        key, descending = ScorecardSortForm(self.request.GET).key()
        cards = scorecards(viewer=self.request.user)
        # Vendors without a figure go last whichever the direction.
        known = [c for c in cards if _sort_value(c, key) is not None]
        unknown = [c for c in cards if _sort_value(c, key) is None]
        known.sort(key=lambda c: _sort_value(c, key), reverse=descending)
        longest = max((c.mean_slip_days or 0 for c in cards), default=0)
        columns = []
        for name, label in SCORECARD_SORTS.items():
            current = name == key
            columns.append(
                {
                    "key": name,
                    "label": label,
                    "aria_sort": ("descending" if descending else "ascending") if current else "",
                    # A second click on the sorted column reverses it.
                    "next": f"-{name}" if current and not descending else name,
                }
            )
        return super().get_context_data(
            rows=[_scorecard_row(card, longest) for card in known + unknown],
            columns=columns,
            sort_label=SCORECARD_SORTS[key],
            descending=descending,
            **kwargs,
        )
