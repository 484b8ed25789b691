from typing import Any

from django.core.management.base import BaseCommand

from orders import exports
from orders.csv_format import QUOTE_COLUMNS
from orders.management.commands._export import write_csv
from orders.models import PurchaseOrder


class Command(BaseCommand):
    help = (
        "Write the quote history CSV (every delivery quote of every order, oldest first per "
        "order) to standard output or --output."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument(
            "--bom", action="store_true", help="Start with a UTF-8 byte order mark (for Excel)."
        )

    def handle(self, *args: Any, output: str | None, bom: bool, **options: Any) -> None:
        rows = write_csv(
            self,
            exports.quote_rows(PurchaseOrder.objects.all()),
            header=QUOTE_COLUMNS,
            output=output,
            bom=bom,
        )
        if output:
            self.stdout.write(f"Wrote {rows} quote(s) to {output}.")
