from datetime import date
from typing import Any

from django.core.management.base import BaseCommand

from orders import alerts, notifications
from orders.price_rules import PRICE_RISE
from orders.slips import Code


class Command(BaseCommand):
    help = (
        "Run the slip scan now, synchronously: judge every open order, record new alerts, "
        "escalate unacknowledged ones, and send the digests."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--date",
            type=date.fromisoformat,
            help="Judge as of this day (YYYY-MM-DD) instead of today in TIME_ZONE.",
        )

    def handle(self, *args: Any, date: date | None, **options: Any) -> None:
        result = alerts.run_full_scan(today=date)
        sent = failed = 0
        for email_id in result.email_ids:
            try:
                sent += notifications.send_outbox_email(email_id)
            except Exception as exc:  # left FAILED in the outbox; the sweep retries it
                failed += 1
                self.stderr.write(f"Email {email_id} not sent (kept in the outbox): {exc}")
        self.stdout.write(f"Scanned {result.orders} open orders.")
        self.stdout.write("Findings by rule:")
        for code in [*Code, PRICE_RISE]:
            self.stdout.write(f"  {code}: {result.findings.get(code, 0)}")
        self.stdout.write(f"New alerts: {sum(result.new_alerts.values())}")
        self.stdout.write(
            f"Open alerts nobody may be told of: {result.untold}"
            + (" (buyers and watchers inactive, without email or access)" if result.untold else "")
        )
        self.stdout.write(
            f"Emails sent: {sent}" + (f" (failed, will retry: {failed})" if failed else "")
        )
