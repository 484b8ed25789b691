"""One notion of "today" for every rule, default and test: the date in settings.TIME_ZONE."""

from datetime import date

from django.utils import timezone


def today() -> date:
    return timezone.localdate()
