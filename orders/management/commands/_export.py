"""Shared by export_orders and export_quotes: where the CSV text goes."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence

from django.core.management.base import BaseCommand, CommandError

from orders.exports import csv_lines


class _Counted:
    def __init__(self, rows: Iterable[Sequence[str]]) -> None:
        self.rows, self.count = rows, 0

    def __iter__(self) -> Iterator[Sequence[str]]:
        for row in self.rows:
            self.count += 1
            yield row


def write_csv(
    command: BaseCommand,
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str],
    output: str | None,
    bom: bool,
    csv_fields: bool = False,
) -> int:
    """Write the CSV to the file `output`, or to the command's stdout when None; return the
    number of rows written (header excluded). csv_fields: as for csv_lines()."""
    counted = _Counted(rows)
    blocks = csv_lines(counted, header=header, bom=bom, csv_fields=csv_fields)
    if output is None:
        for block in blocks:
            command.stdout.write(block, ending="")
        return counted.count
    try:
        # newline="": the csv module writes its own CRLF line ends.
        with open(output, "w", encoding="utf-8", newline="") as file:
            file.writelines(blocks)
    except OSError as exc:
        raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
    return counted.count
