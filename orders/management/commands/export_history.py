from datetime import datetime, time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from orders import audit
from orders.management.commands._export import write_csv


def _since(value: str) -> datetime:
    """A date (from its start in TIME_ZONE) or a date and time (ISO 8601)."""
    moment = parse_datetime(value)
    if moment is None:
        try:
            day = parse_date(value)
        except ValueError:
            day = None
        if day is None:
            raise CommandError(f"--since {value!r} is not a date (YYYY-MM-DD) or ISO date-time.")
        moment = datetime.combine(day, time.min)
    return timezone.make_aware(moment) if timezone.is_naive(moment) else moment


class Command(BaseCommand):
    help = (
        "Write the audit trail as CSV (who changed which order, line, quote, receipt, price "
        "or allocation, when, what changed, and why) to standard output or --output."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument(
            "--since", metavar="DATE", help="Only records from this day (YYYY-MM-DD) on."
        )
        parser.add_argument(
            "--model",
            action="append",
            choices=sorted(audit.AUDITED_BY_KEY),
            help="Only this kind of record (repeat for several).",
        )
        parser.add_argument(
            "--bom", action="store_true", help="Start with a UTF-8 byte order mark (for Excel)."
        )

    def handle(
        self,
        *args: Any,
        output: str | None,
        since: str | None,
        model: list[str] | None,
        bom: bool,
        **options: Any,
    ) -> None:
        rows = write_csv(
            self,
            audit.history_rows(since=_since(since) if since else None, model_keys=model),
            header=audit.HISTORY_COLUMNS,
            output=output,
            bom=bom,
        )
        if output:
            self.stdout.write(f"Wrote {rows} history record(s) to {output}.")
