import csv
from collections.abc import Iterator
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db.models import F

from orders.quotas import allocations_with_availability

COLUMNS = (
    "team",
    "team_lead_email",
    "gpu_model",
    "period_start",
    "period_end",
    "quota",
    "po_number",
    "vendor",
    "allocated",
    "priority",
    "expected_on",
    "received",
    "past_period_end",
)
# Where each column comes from, in COLUMNS order.
_SOURCES = (
    "quota__team__name",
    "quota__team__lead__email",
    "quota__gpu_model__name",
    "quota__period_start",
    "quota__period_end",
    "quota__gpus",
    "line__order__po_number",
    "line__order__vendor__name",
    "gpus",
    "priority",
    "expected_on",
    "received",
    "past_period_end",
)
# Text people typed: the only cells that could smuggle a formula into a spreadsheet.
_TEXT = frozenset({"team", "team_lead_email", "gpu_model", "po_number", "vendor"})
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def _neutralise(text: str) -> str:
    """A leading ' on text a spreadsheet would run as a formula. Kept private and tiny: the
    shared CSV writer (orders/exports.py, in progress elsewhere) will replace it."""
    return "'" + text if text.lstrip("'").startswith(_FORMULA_STARTS) else text


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    return _neutralise(value) if column in _TEXT else str(value)


def allocation_rows() -> Iterator[list[str]]:
    """One row per allocation, by team, GPU model, period and expected date. One query,
    read in chunks."""
    rows = (
        allocations_with_availability()
        .order_by(
            "quota__team__name",
            "quota__gpu_model__name",
            "quota__period_start",
            F("expected_on").asc(nulls_last=True),
            "line__order__po_number",
        )
        .values_list(*_SOURCES)
        .iterator(chunk_size=2000)
    )
    for row in rows:
        yield [_cell(column, value) for column, value in zip(COLUMNS, row, strict=True)]


class Command(BaseCommand):
    help = (
        "Write every allocation of GPUs to teams as CSV: quota, order, when the GPUs are "
        "expected, how many arrived, and whether they come after the quota period's end."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args: Any, output: str | None, **options: Any) -> None:
        if output is None:
            self._write(self.stdout)
            return
        try:
            with open(output, "w", newline="", encoding="utf-8") as file:
                count = self._write(file)
        except OSError as exc:
            raise CommandError(f"Cannot write {output}: {exc}") from exc
        self.stderr.write(f"Wrote {count} allocations to {output}.")

    def _write(self, file: Any) -> int:
        writer = csv.writer(file)  # RFC 4180: quoted as needed, CRLF line ends
        writer.writerow(COLUMNS)
        count = 0
        for row in allocation_rows():
            writer.writerow(row)
            count += 1
        return count
