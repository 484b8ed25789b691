from collections.abc import Iterator
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand
from django.db.models import F

from orders.exports import neutralise
from orders.management.commands._export import write_csv
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


def _cell(column: str, value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, date):
        return value.isoformat()
    return neutralise(value) if column in _TEXT else str(value)


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
        parser.add_argument("--output", metavar="FILE", help="Write here instead of stdout.")
        parser.add_argument(
            "--bom", action="store_true", help="Start with a UTF-8 byte order mark (for Excel)."
        )

    def handle(self, *args: Any, output: str | None, bom: bool, **options: Any) -> None:
        count = write_csv(self, allocation_rows(), header=COLUMNS, output=output, bom=bom)
        if output:
            self.stderr.write(f"Wrote {count} allocations to {output}.")
