"""What import_orders and import_quotes share: read the file, run the import, print the report,
and exit non-zero when anything was wrong (then nothing was written)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from orders.imports import ImportReport


class ImportCommand(BaseCommand):
    importer: Callable[..., ImportReport]
    columns: str = ""

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file", type=Path, help=f"CSV file (UTF-8). Columns: {self.columns}")
        parser.add_argument(
            "--dry-run",
            action="store_true",
            help="Check the file and report what would be created, without writing anything.",
        )

    def handle(self, *args: Any, file: Path, dry_run: bool, **options: Any) -> None:
        # The import reads the file as a stream, up to IMPORT_MAX_BYTES and IMPORT_MAX_ROWS.
        try:
            with file.open("rb") as content:
                report = self.importer(content=content, dry_run=dry_run, filename=file.name)
        except OSError as exc:
            raise CommandError(f"Cannot read {file}: {exc.strerror or exc}") from None
        for error in report.errors:
            self.stderr.write(str(error))
        if not report.ok:
            raise CommandError(report.summary()[0])
        for line in report.summary():
            self.stdout.write(line)
