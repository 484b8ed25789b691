from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "GPU procurement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # checks and schedules register themselves (a system check; the schedule's signals).
        from orders import checks, db_functions, schedules  # noqa: F401

        db_functions.install()
