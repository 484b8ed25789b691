from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from orders.roles import Role, role_grant, role_of

NONE = "none"


class Command(BaseCommand):
    help = (
        "Give a user a role: buyer (adds and edits the orders they buy or watch), "
        "procurement-manager (everything in procurement), viewer (reads everything, may "
        "export), or none (takes the role away). Replaces any other role and makes the "
        "user staff, so they can use the admin."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("user", help="The user's email address (or username).")
        parser.add_argument("role", choices=[*(role.value for role in Role), NONE])

    def handle(self, *args: Any, user: str, role: str, **options: Any) -> None:
        user_model = get_user_model()
        matches = list(user_model.objects.filter(email__iexact=user)[:2]) or list(
            user_model.objects.filter(username=user)[:1]
        )
        if not matches:
            raise CommandError(f"No user with the email address or username {user!r}.")
        if len(matches) > 1:
            raise CommandError(
                f"Several users have the email address {user!r}: give the username instead."
            )
        account = matches[0]
        before = role_of(account)
        role_grant(user=account, role=None if role == NONE else Role(role))
        was = before.value if before else NONE
        self.stdout.write(f"{account.get_username()} <{account.email}>: {was} -> {role}")
        if not account.is_active:
            self.stdout.write(
                self.style.WARNING(
                    "The account is inactive: it can neither log in nor get alert emails "
                    "until it is activated (admin: Users)."
                )
            )
