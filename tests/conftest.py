from typing import Any

import pytest
from django.conf import settings

ON_POSTGRES = settings.DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql"


def pytest_report_header(config: pytest.Config) -> str:
    db = settings.DATABASES["default"]
    where = f"{db['HOST']}:{db['PORT']}" if ON_POSTGRES else db["NAME"]
    return f"database: {db['ENGINE'].rsplit('.', 1)[-1]} ({where})"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs PostgreSQL: run scripts/test.sh or set DATABASE_URL")
    for item in items:
        if "postgres" in item.keywords and not ON_POSTGRES:
            item.add_marker(skip)


@pytest.fixture
def admin_client_logged_in(client: Any, admin_user: Any) -> Any:
    admin_user.email = "admin@example.com"
    admin_user.save()
    client.force_login(admin_user)
    return client


@pytest.fixture(autouse=True)
def _plain_static_files(settings: Any) -> None:
    """Production serves hashed files made by collectstatic; tests render without running it."""
    settings.STORAGES = settings.STORAGES | {
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}
    }


@pytest.fixture
def freezer_today() -> Any:
    """Set "today" (noon in TIME_ZONE) for the code under test: travel("2023-07-21")."""
    import time_machine
    from django.utils import timezone

    travellers: list[Any] = []

    def travel(day: str) -> None:
        noon = timezone.make_aware(timezone.datetime.fromisoformat(f"{day}T12:00"))
        traveller = time_machine.travel(noon, tick=True)
        traveller.start()
        travellers.append(traveller)

    yield travel
    for traveller in reversed(travellers):
        traveller.stop()


def run_at_once(work: Any, times: int = 2) -> list[Any]:
    """Run `work()` in `times` threads released together, each on its own database
    connection; return what each returned or raised (exceptions are returned, not raised)."""
    import threading

    from django.db import connection

    barrier = threading.Barrier(times)
    outcomes: list[Any] = []

    def run() -> None:
        try:
            barrier.wait()
            outcomes.append(work())
        except BaseException as exc:  # handed to the test to judge
            outcomes.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=run) for _ in range(times)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return outcomes
