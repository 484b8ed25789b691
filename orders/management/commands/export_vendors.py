from typing import Any

from django.core.management.base import BaseCommand

from orders.exports import neutralise
from orders.management.commands._export import write_csv
from orders.scorecards import scorecards

COLUMNS = (
    "vendor",
    "kind",
    "orders",
    "units",
    "received_orders",
    "on_time_rate",
    "on_time_rate_latest_quote",
    "mean_slip_days",
    "median_slip_days",
    "mean_requotes_per_order",
    "open_alert_share",
    "price_change",
)


def _number(value: float | None, places: int) -> str:
    return "" if value is None else f"{value:.{places}f}"


class Command(BaseCommand):
    help = (
        "Write the vendor scorecards as CSV: orders, GPUs, on-time rates, slip days, re-quotes, "
        "open-alert share and price change (rates as fractions, 0.5 = 50%)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument(
            "--bom", action="store_true", help="Start with a UTF-8 byte order mark (for Excel)."
        )

    def handle(self, *args: Any, output: str | None, bom: bool, **options: Any) -> None:
        rows = (
            [
                neutralise(card.vendor.name),
                card.vendor.kind,
                str(card.orders),
                str(card.units),
                str(card.received),
                _number(card.on_time_rate, 4),
                _number(card.on_time_rate_latest, 4),
                _number(card.mean_slip_days, 1),
                _number(card.median_slip_days, 1),
                _number(card.mean_requotes, 2),
                _number(card.open_alert_share, 4),
                neutralise(card.price_change),
            ]
            for card in scorecards()
        )
        written = write_csv(self, rows, header=COLUMNS, output=output, bom=bom)
        if output:
            self.stdout.write(f"Wrote {written} vendor(s) to {output}.")
