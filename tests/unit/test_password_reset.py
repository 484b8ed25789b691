"""Setting a password by email (procurement.accounts): the way an imported buyer, who has no
password, gets into the site."""

from __future__ import annotations

import csv
import re
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.core import mail
from django.urls import reverse

from orders import csv_format
from orders.imports import orders_import
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

SITE_URL = "https://procurement.example.com/tracker"
RESET = reverse("admin_password_reset")
PASSWORD = "violet kettle harbour 42"
ADDRESS = "New.Buyer@gpu-buyers.example"


@pytest.fixture(autouse=True)
def _site(settings: Any) -> None:
    settings.SITE_URL = SITE_URL


def _imported_buyer() -> Any:
    """A buyer as an orders import creates them: active, a Buyer, no usable password."""
    row = {
        "po_number": "PO-1",
        "vendor": "Pacific Silicon Distribution",
        "buyer_email": ADDRESS,
        "gpu_model": "A100 80GB SXM",
        "quantity": "8",
        "unit_price": "10000",
        "currency": "USD",
        "placed_on": "2023-04-14",
    }
    out = StringIO()
    writer = csv.writer(out)
    writer.writerow(csv_format.ORDER_REQUIRED)
    writer.writerow([row[c] for c in csv_format.ORDER_REQUIRED])
    assert orders_import(content=out.getvalue().encode()).created["buyers"] == 1
    user = get_user_model().objects.get(email__iexact=ADDRESS)
    assert user.is_active
    assert not user.has_usable_password()
    return user


def _reset_link() -> str:
    [email] = mail.outbox
    found = re.findall(r"https?://\S+", email.body)
    assert len(found) == 1, email.body
    return found[0]


def _log_in(client: Any, username: str, password: str) -> Any:
    return client.post(reverse("login"), {"username": username, "password": password})


def test_an_imported_buyer_sets_a_first_password_by_email_and_logs_in(client: Any) -> None:
    buyer = _imported_buyer()
    login_page = client.get(reverse("login")).content.decode()
    assert f'<a href="{RESET}">Forgot password?</a>' in login_page
    # The admin's login page shows its own link once the URL name exists.
    assert f'href="{RESET}"' in client.get(reverse("admin:login")).content.decode()

    # Asked from another host name (as behind a proxy): the link is still on SITE_URL.
    response = client.post(RESET, {"email": ADDRESS.upper()}, HTTP_HOST="localhost")
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_done")
    email = mail.outbox[0]
    assert email.to == [ADDRESS]
    assert email.subject == "Set your password for GPU Procurement Tracker"
    assert buyer.username in email.body
    link = _reset_link()
    assert link.startswith(f"{SITE_URL}/accounts/password-reset/")
    assert "localhost" not in email.body
    assert "testserver" not in email.body

    # Django swaps the token for a session and redirects to a token-less form.
    form = client.get(link.removeprefix(SITE_URL), follow=True)
    assert form.status_code == 200
    assert form.context["validlink"]
    response = client.post(
        form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert response.status_code == 302
    assert response["Location"] == reverse("password_reset_complete")
    buyer.refresh_from_db()
    assert buyer.has_usable_password()

    response = _log_in(client, buyer.username, PASSWORD)
    assert response.status_code == 302
    assert client.session["_auth_user_id"] == str(buyer.pk)
    # The link worked once.
    client.logout()
    assert not client.get(link.removeprefix(SITE_URL), follow=True).context["validlink"]


def test_inactive_accounts_and_unknown_addresses_get_no_email_and_the_same_answer(
    client: Any,
) -> None:
    gone = UserFactory(username="gone", email="gone@gpu-buyers.example", is_active=False)
    gone.set_unusable_password()
    gone.save()
    for address in ("gone@gpu-buyers.example", "nobody@gpu-buyers.example"):
        response = client.post(RESET, {"email": address})
        assert response.status_code == 302
        assert response["Location"] == reverse("password_reset_done")
    assert mail.outbox == []


def test_a_locked_out_login_does_not_stop_setting_a_password(client: Any, settings: Any) -> None:
    """django-axes counts failed logins only: the reset pages stay open to a locked-out user
    (they prove the mailbox, not the password), and the lockout itself still holds."""
    settings.AXES_FAILURE_LIMIT = 2
    buyer = _imported_buyer()
    for _ in range(2):
        _log_in(client, buyer.username, "wrong")
    assert _log_in(client, buyer.username, "wrong").status_code == 429

    assert client.post(RESET, {"email": ADDRESS}).status_code == 302
    form = client.get(_reset_link().removeprefix(SITE_URL), follow=True)
    assert form.context["validlink"]
    response = client.post(
        form.redirect_chain[-1][0], {"new_password1": PASSWORD, "new_password2": PASSWORD}
    )
    assert response["Location"] == reverse("password_reset_complete")
    buyer.refresh_from_db()
    assert buyer.check_password(PASSWORD)
    assert _log_in(client, buyer.username, PASSWORD).status_code == 429
