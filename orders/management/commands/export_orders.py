from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders import exports
from orders.management.commands._export import write_text
from orders.models import OrderStatus, PurchaseOrder, Vendor


class Command(BaseCommand):
    help = (
        "Write the orders CSV (one row per order line, with delivery figures and open alerts) "
        "to standard output or --output."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument("--vendor", metavar="NAME", help="Only this vendor (any case).")
        parser.add_argument(
            "--status", metavar="S", help=f"Only this status: {', '.join(OrderStatus.values)}."
        )
        parser.add_argument(
            "--slipping",
            action="store_true",
            help="Only orders whose current quoted date is later than their first.",
        )
        parser.add_argument(
            "--bom", action="store_true", help="Start with a UTF-8 byte order mark (for Excel)."
        )

    def handle(
        self,
        *args: Any,
        output: str | None,
        vendor: str | None,
        status: str | None,
        slipping: bool,
        bom: bool,
        **options: Any,
    ) -> None:
        orders = PurchaseOrder.objects.slipping() if slipping else PurchaseOrder.objects.all()
        if status is not None:
            if status not in OrderStatus.values:
                raise CommandError(
                    f'--status "{status}" is not an order status; use one of: '
                    f"{', '.join(OrderStatus.values)}."
                )
            orders = orders.filter(status=status)
        if vendor is not None:
            if not Vendor.objects.filter(name__iexact=vendor).exists():
                raise CommandError(f'--vendor "{vendor}": no vendor has that name.')
            orders = orders.filter(vendor__name__iexact=vendor)
        rows = write_text(self, exports.orders_csv(orders, bom=bom), output=output)
        if output:
            self.stdout.write(f"Wrote {rows} order line(s) to {output}.")
