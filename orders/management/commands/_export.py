"""Shared by the export commands: where the CSV text goes."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from django.core.management.base import BaseCommand, CommandError

from orders.exports import CsvText, csv_lines


def write_text(command: BaseCommand, text: CsvText, *, output: str | None) -> int:
    """Write the CSV text to the file `output`, or to the command's stdout when None; return
    the number of rows written (header excluded)."""
    if output is None:
        for block in text:
            command.stdout.write(block, ending="")
        return text.rows
    try:
        # newline="": the text has its own CRLF line ends.
        with open(output, "w", encoding="utf-8", newline="") as file:
            file.writelines(text)
    except OSError as exc:
        raise CommandError(f"Cannot write {output}: {exc.strerror}.") from exc
    return text.rows


def write_csv(
    command: BaseCommand,
    rows: Iterable[Sequence[str]],
    *,
    header: Sequence[str],
    output: str | None,
    bom: bool,
) -> int:
    """write_text() for rows under a header."""
    return write_text(command, csv_lines(rows, header=header, bom=bom), output=output)
