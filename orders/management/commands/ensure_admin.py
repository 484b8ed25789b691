import os
import secrets
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Create or reset a local superuser and print its login. The password comes from "
        "ADMIN_PASSWORD, else from var/admin-password (generated on first use). For local "
        "and demo use; production creates accounts with createsuperuser."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--username", default=os.environ.get("ADMIN_USERNAME", "admin"))
        parser.add_argument("--email", default=os.environ.get("ADMIN_EMAIL", "admin@localhost"))

    def handle(self, *args: Any, username: str, email: str, **options: Any) -> None:
        password = os.environ.get("ADMIN_PASSWORD") or self._stored_password()
        user_model = get_user_model()
        user = user_model.objects.filter(username=username).first() or user_model(username=username)
        user.email = user.email or email
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        # Three lines, the address first: scripts/run.sh ends its start-up with them.
        self.stdout.write(self.style.SUCCESS(f"Admin login: {settings.SITE_URL}/admin/"))
        self.stdout.write(f"  user:     {username}")
        self.stdout.write(f"  password: {password}")

    def _stored_password(self) -> str:
        path = Path(settings.VAR_DIR) / "admin-password"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        password = secrets.token_urlsafe(12)
        path.write_text(password + "\n")
        path.chmod(0o600)
        return password
