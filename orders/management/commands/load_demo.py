from typing import Any

from django.core.management.base import BaseCommand

from orders.demo import load_demo
from orders.history import acting


class Command(BaseCommand):
    help = "Load the 2023 GPU-shortage demo data. Running it again changes nothing."

    def handle(self, *args: Any, **options: Any) -> None:
        with acting(reason="load_demo"):
            summary = load_demo()
        if summary.total == 0:
            self.stdout.write("Demo data already loaded: nothing changed.")
            return
        created = ", ".join(f"{n} {kind}" for kind, n in summary.created.items() if n)
        self.stdout.write(self.style.SUCCESS(f"Demo data loaded: {created}."))
