from typing import Any

from django.core.management.base import BaseCommand

from orders.dates import today
from orders.demo import STORY_YEAR, load_demo
from orders.history import acting


class Command(BaseCommand):
    help = (
        "Load the GPU-shortage demo data, its dates moved by whole years so that it ends in "
        "the year up to today. Running it again changes nothing."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--as-written",
            action="store_true",
            help=f"Keep the story's own dates, in {STORY_YEAR} (the README's examples quote them).",
        )

    def handle(self, *args: Any, as_written: bool, **options: Any) -> None:
        with acting(reason="load_demo"):
            summary = load_demo(as_of=None if as_written else today())
        if summary.total == 0:
            self.stdout.write("Demo data already loaded: nothing changed.")
            return
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded: {summary}."))
