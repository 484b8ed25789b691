"""One notion of "today" for every rule, default and test: the date in settings.TIME_ZONE;
and dates as the databases hand them back."""

from datetime import date, datetime
from typing import Any

from django.utils import timezone


def today() -> date:
    return timezone.localdate()


def as_date(value: Any) -> Any:
    """A date from a database value: SQLite hands back dates computed, aggregated or read
    from JSON as text ("2023-05-01"); a datetime becomes its date; anything else (a date,
    None) is returned as it is."""
    if isinstance(value, str):
        return date.fromisoformat(value)
    return value.date() if isinstance(value, datetime) else value
