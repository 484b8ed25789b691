"""System checks of settings that depend on each other (`manage.py check --deploy`)."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, register
from django.core.checks import Warning as CheckWarning


@register(deploy=True)
def broker_visibility_timeout(app_configs: Any, **kwargs: Any) -> list[CheckMessage]:
    """Redis hands a task out again once it has been unacknowledged this long: a task still
    running, or held by a worker until its retry is due, would then run twice."""
    from orders.tasks import send_alert_email

    timeout = settings.CELERY_BROKER_TRANSPORT_OPTIONS["visibility_timeout"]
    longest = max(settings.CELERY_TASK_TIME_LIMIT, send_alert_email.retry_backoff_max)
    if timeout > longest:
        return []
    return [
        CheckWarning(
            f"CELERY_BROKER_VISIBILITY_TIMEOUT ({timeout} s) is not above the longest a task "
            f"runs or waits for its retry ({longest} s): Redis would deliver such a task again "
            "while the first delivery still holds it.",
            hint="Leave it at 3600 (the default) or set it above that figure.",
            id="orders.W001",
        )
    ]
