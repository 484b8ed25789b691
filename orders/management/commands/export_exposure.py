from typing import Any

from django.core.management.base import BaseCommand

from orders.exports import neutralise
from orders.exposure import GROUP_KEYS, exposure_totals
from orders.management.commands._export import write_csv

COLUMNS = (
    "grouping",
    "key",
    "currency",
    "lines",
    "units",
    "committed",
    "replacement",
    "exposure",
    "lines_without_market_price",
    "reporting_currency",
    "committed_in_reporting_currency",
    "exposure_in_reporting_currency",
)


def _money(value: Any) -> str:
    return "" if value is None else f"{value:.2f}"


class Command(BaseCommand):
    help = (
        "Write the budget exposure of open orders as CSV: committed cost, replacement cost at "
        "the latest market price and their difference, per GPU model, vendor and buyer and per "
        "currency (converted to REPORTING_CURRENCY only where an exchange rate exists)."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument(
            "--by",
            choices=list(GROUP_KEYS),
            action="append",
            help="Only these groupings (repeatable); all three by default.",
        )
        parser.add_argument(
            "--bom", action="store_true", help="Start with a UTF-8 byte order mark (for Excel)."
        )

    def handle(
        self, *args: Any, output: str | None, by: list[str] | None, bom: bool, **options: Any
    ) -> None:
        rows = []
        for grouping in by or list(GROUP_KEYS):
            report = exposure_totals(grouping)  # type: ignore[arg-type]
            for row in report.rows:
                rows.append(
                    [
                        grouping,
                        neutralise(row.key),
                        row.currency,
                        str(row.lines),
                        str(row.units),
                        _money(row.committed),
                        _money(row.replacement),
                        _money(row.exposure),
                        str(row.unpriced_lines),
                        report.reporting_currency,
                        _money(row.committed_converted),
                        _money(row.exposure_converted),
                    ]
                )
        written = write_csv(self, rows, header=COLUMNS, output=output, bom=bom)
        if output:
            self.stdout.write(f"Wrote {written} row(s) to {output}.")
