from django.apps import AppConfig


class OrdersConfig(AppConfig):
    name = "orders"
    verbose_name = "GPU procurement"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from orders import checks, db_functions  # noqa: F401  (checks registers itself)

        db_functions.install()
