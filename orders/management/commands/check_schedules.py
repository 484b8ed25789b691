from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders import schedules
from orders.models import PurchaseOrder


class Command(BaseCommand):
    help = (
        "Recompute the stored schedule (dates, lead times, slip, re-quotes) and lead-time "
        "counts, scorecard figures and order tally parts of every order, or of a random "
        "sample, from its history; report the orders and lines that differ (and, checking "
        "every order, the counters of the tallies), and with --fix rewrite them. Exits 1 "
        "when it finds a difference it was not asked to fix."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--sample", type=int, metavar="N", help="Check N orders picked at random, not all."
        )
        parser.add_argument("--fix", action="store_true", help="Rewrite the columns that differ.")

    def handle(self, *args: Any, sample: int | None, fix: bool, **options: Any) -> None:
        if sample is not None and sample < 1:
            raise CommandError(f"--sample must be at least 1, not {sample}.")
        order_ids = None
        if sample is not None:
            order_ids = list(
                PurchaseOrder.objects.order_by("?").values_list("pk", flat=True)[:sample]
            )
        found = schedules.drift(order_ids, fix=fix)
        checked = "every order" if sample is None else f"{len(order_ids or ()):,} orders"
        if found == schedules.Drift():
            self.stdout.write(f"Checked {checked}: every stored schedule matches its history.")
            return
        examples = ", ".join(
            PurchaseOrder.objects.filter(pk__in=found.order_ids)
            .order_by("po_number")
            .values_list("po_number", flat=True)
        )
        summary = (
            f"Checked {checked}: {found.orders:,} orders and {found.lines:,} lines stored a "
            f"schedule that differs from their quote history"
            + (
                f", {found.lead_time_orders:,} orders' lead-time counts and "
                f"{found.lead_time_keys:,} counters of the lead-time tally differ"
                if found.lead_time_orders or found.lead_time_keys
                else ""
            )
            + (
                f", {found.score_orders:,} orders' scorecard figures and "
                f"{found.score_keys:,} rows of the scorecards' tally differ"
                if found.score_orders or found.score_keys
                else ""
            )
            + (
                f", {found.tally_orders:,} orders' parts of the order tally and "
                f"{found.tally_keys:,} of its counters differ"
                if found.tally_orders or found.tally_keys
                else ""
            )
            + (f" (e.g. {examples})" if examples else "")
        )
        if fix:
            self.stdout.write(f"{summary}; rewritten.")
            return
        raise CommandError(f"{summary}. Run with --fix to rewrite them.")
