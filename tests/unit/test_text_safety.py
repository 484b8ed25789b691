"""Short text stays one line (a line break in a PO number stopped every digest email), and a PO
number is one order whatever its case: refused by the field validators (admin, full_clean,
imports), by the database, cleaned up by migration 0011, and never able to break an email."""

from __future__ import annotations

import importlib
import smtplib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.apps import apps as django_apps
from django.core.exceptions import ValidationError
from django.core.mail.backends.base import BaseEmailBackend
from django.db import IntegrityError, connection, models, transaction
from django.urls import reverse
from django.utils import timezone

from orders import csv_format, notifications, services, tasks, text
from orders.imports import orders_import, quotes_import
from orders.models import (
    Delivery,
    DeliveryQuote,
    GpuModel,
    OutboxEmail,
    PriceAlert,
    PriceQuote,
    PurchaseOrder,
    SlipAlert,
    Team,
    Vendor,
)
from orders.notifications import Digest, OrderBlock
from tests.csv_files import GOOD_ORDER, csv_file
from tests.factories import (
    GpuModelFactory,
    OrderLineFactory,
    PriceQuoteFactory,
    PurchaseOrderFactory,
    TeamFactory,
    UserFactory,
    VendorFactory,
)

pytestmark = pytest.mark.django_db

MIGRATION = importlib.import_module("orders.migrations.0011_clean_control_characters")

BAD_CHARACTERS = ["\n", "\r", "\r\n", "\t", "\x00", "\x1b", "\x7f", "\x85", "\x9f"]


# --- The rule itself --------------------------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_CHARACTERS, ids=repr)
def test_the_validator_refuses_each_control_character_naming_field_and_character(
    bad: str,
) -> None:
    with pytest.raises(ValidationError) as excinfo:
        text.single_line("PO number")(f"PO-1{bad}2")
    [message] = excinfo.value.messages
    shown = repr(bad[0])[1:-1]
    assert message.startswith(f'PO number "PO-1{repr(bad)[1:-1]}2" contains')
    assert f"control character {shown} " in message


@pytest.mark.parametrize("good", ["PO-1", "Zürich GPU AG", "H100 SXM 80GB", "株式会社", ""])
def test_the_validator_accepts_one_line_of_any_script(good: str) -> None:
    text.single_line("Vendor name")(good)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PO-1\r\nBcc: all@example.com", "PO-1 Bcc: all@example.com"),
        ("  A\t\tB \x85 C\x00", "A B C"),
        ("one\u2028two", "one two"),
        ("plain", "plain"),
    ],
)
def test_header_text_is_one_line(value: str, expected: str) -> None:
    assert text.header_text(value) == expected


def test_the_migration_cleans_the_same_characters_the_rule_refuses() -> None:
    assert MIGRATION.CONTROL_CHARACTERS == text.CONTROL_CHARACTERS


# --- Every short text field: validation and the database --------------------------------------


@dataclass
class Field:
    id: str
    model: type[models.Model]
    field: str
    label: str
    existing: Callable[[], models.Model]


def _quote() -> DeliveryQuote:
    order = PurchaseOrderFactory()
    return services.quote_add(
        order=order, quoted_on=order.placed_on, delivery_date=date(2023, 6, 1)
    )


def _delivery() -> Delivery:
    line = OrderLineFactory()
    return services.delivery_record(line=line, quantity=1, delivered_on=date(2023, 5, 1))


FIELDS = [
    Field("PO number", PurchaseOrder, "po_number", "PO number", PurchaseOrderFactory),
    Field("vendor name", Vendor, "name", "Vendor name", VendorFactory),
    Field("GPU model name", GpuModel, "name", "GPU model name", GpuModelFactory),
    Field("GPU family", GpuModel, "family", "GPU family", GpuModelFactory),
    Field("team name", Team, "name", "Team name", TeamFactory),
    Field("quote note", DeliveryQuote, "note", "Quote note", _quote),
    Field("quote source", DeliveryQuote, "source", "Quote source", _quote),
    Field("receipt note", Delivery, "note", "Receipt note", _delivery),
    Field("price note", PriceQuote, "note", "Price note", PriceQuoteFactory),
]


@pytest.mark.parametrize("case", FIELDS, ids=lambda c: c.id)
def test_full_clean_refuses_a_line_break_naming_the_field(case: Field) -> None:
    row = case.existing()
    setattr(row, case.field, "first\nsecond")
    with pytest.raises(ValidationError) as excinfo:
        row.full_clean()
    [message] = excinfo.value.message_dict[case.field]
    assert message.startswith(f'{case.label} "first\\nsecond" contains the control character')


@pytest.mark.parametrize("bad", ["\n", "\r", "\t", "\x1b", "\x85"], ids=repr)
@pytest.mark.parametrize("case", FIELDS, ids=lambda c: c.id)
def test_the_database_refuses_a_control_character_in_a_raw_update(case: Field, bad: str) -> None:
    row = case.existing()
    before = getattr(row, case.field)
    with pytest.raises(IntegrityError), transaction.atomic():
        case.model.objects.filter(pk=row.pk).update(**{case.field: f"first{bad}second"})
    row.refresh_from_db()
    assert getattr(row, case.field) == before


# --- The admin ---------------------------------------------------------------------------------


def _order_post(order: PurchaseOrder, **changes: str) -> dict[str, Any]:
    data = {
        "po_number": order.po_number,
        "vendor": order.vendor_id,
        "buyer": order.buyer_id,
        "status": order.status,
        "placed_on": order.placed_on.isoformat(),
        "currency": order.currency,
        "notes": "",
    }
    for prefix in ("lines", "quotes", "deliveries"):
        data |= {f"{prefix}-TOTAL_FORMS": 0, f"{prefix}-INITIAL_FORMS": 0}
    return data | changes


@pytest.mark.parametrize(
    ("url_name", "data", "field"),
    [
        ("admin:orders_vendor_add", {"name": "Acme\r\nBcc: x@example.com", "kind": "oem"}, "name"),
        ("admin:orders_gpumodel_add", {"name": "H100\nSXM", "memory_gb": 80}, "name"),
        (
            "admin:orders_gpumodel_add",
            {"name": "H100 SXM", "family": "Hop\tper", "memory_gb": 80},
            "family",
        ),
    ],
    ids=["vendor name", "GPU model name", "GPU family"],
)
def test_the_admin_refuses_a_line_break_and_saves_nothing(
    admin_client_logged_in: Any, url_name: str, data: dict[str, Any], field: str
) -> None:
    model = Vendor if "vendor" in url_name else GpuModel
    response = admin_client_logged_in.post(reverse(url_name), data)
    assert response.status_code == 200
    assert field in response.context["adminform"].form.errors
    assert "contains the control character" in response.content.decode()
    assert not model.objects.exists()


def test_the_admin_refuses_a_line_break_in_a_po_number(admin_client_logged_in: Any) -> None:
    order = PurchaseOrderFactory(po_number="PO-1")
    url = reverse("admin:orders_purchaseorder_change", args=[order.pk])
    page = admin_client_logged_in.get(url)
    assert page.status_code == 200

    response = admin_client_logged_in.post(url, _order_post(order, po_number="PO-1\r\nX"))

    assert response.status_code == 200
    errors = response.context["adminform"].form.errors
    assert "control character \\r" in errors["po_number"][0]
    order.refresh_from_db()
    assert order.po_number == "PO-1"


# --- The CSV imports ----------------------------------------------------------------------------

ORDER_HEADER = (*csv_format.ORDER_REQUIRED, "status")


def _csv(rows: list[dict[str, str]], header: tuple[str, ...] = ORDER_HEADER) -> bytes:
    return csv_file(rows, header, line_end="\r\n")  # quotes a cell holding a line break


def _table_counts() -> dict[str, int]:
    return {m._meta.label: m._default_manager.count() for m in django_apps.get_models()}


@pytest.mark.parametrize("column", ["po_number", "vendor", "gpu_model"])
def test_an_import_refuses_a_quoted_cell_with_a_line_break_by_row_and_column(column: str) -> None:
    rows = [GOOD_ORDER | {"po_number": "PO-1"}, GOOD_ORDER | {"po_number": "PO-2"}]
    rows[1][column] = rows[1][column][:3] + "\n" + rows[1][column][3:]
    content = _csv(rows)
    assert b"\n" in content.replace(b"\r\n", b"")  # a line break inside a quoted cell
    before = _table_counts()

    report = orders_import(content=content)

    assert [(e.row, e.column) for e in report.errors] == [(3, column)], report.errors
    assert "contains the control character \\n" in str(report.errors[0])
    assert _table_counts() == before


def test_a_quote_sheet_refuses_a_note_with_a_line_break() -> None:
    PurchaseOrderFactory(po_number="PO-1", placed_on=date(2023, 4, 14))
    content = _csv(
        [
            {
                "po_number": "PO-1",
                "quoted_on": "2023-04-20",
                "delivery_date": "2023-06-01",
                "note": "late\r\nBcc: x",
            }
        ],
        header=("po_number", "quoted_on", "delivery_date", "note"),
    )
    report = quotes_import(content=content)
    assert [(e.row, e.column) for e in report.errors] == [(2, "note")], report.errors
    assert not DeliveryQuote.objects.exists()


def test_a_file_name_with_a_line_break_makes_a_one_line_quote_source() -> None:
    PurchaseOrderFactory(po_number="PO-1", placed_on=date(2023, 4, 14))
    content = _csv(
        [{"po_number": "PO-1", "quoted_on": "2023-04-20", "delivery_date": "2023-06-01"}],
        header=("po_number", "quoted_on", "delivery_date"),
    )
    report = quotes_import(content=content, filename="june\r\nquotes.csv")
    assert report.ok, report.errors
    assert DeliveryQuote.objects.get().source == "CSV import june quotes.csv"


# --- Emails ---------------------------------------------------------------------------------


def test_a_digest_subject_is_one_line_whatever_the_po_number_holds() -> None:
    order = PurchaseOrder(po_number="PO-1\r\nBcc: all@example.com")
    block = OrderBlock(order, alerts=[SlipAlert(code=SlipAlert.Code.OVERDUE)])
    digest = Digest("buyer@example.com", new={1: block})
    assert digest.subject() == "[GPU slip] PO-1 Bcc: all@example.com: overdue"


def test_a_price_digest_subject_is_one_line_whatever_the_names_hold() -> None:
    alert = PriceAlert(
        gpu_model=GpuModel(name="H100\nSXM"),
        vendor=Vendor(name="Acme\rCorp"),
        rise_percent=Decimal("12.5"),
    )
    digest = Digest("buyer@example.com", prices=[alert])
    assert digest.subject() == "[GPU price] H100 SXM +12.5% (Acme Corp)"


def _outbox(recipient: str, subject: str = "[GPU slip] PO-1: slipped", **kw: Any) -> OutboxEmail:
    return OutboxEmail.objects.create(
        recipient_email=recipient,
        subject=subject,
        body_text="body",
        body_html="<p>body</p>",
        created_at=timezone.now() - timedelta(minutes=5),
        **kw,
    )


def test_a_stored_subject_with_a_line_break_is_sent_as_one_line(mailoutbox: list) -> None:
    email = _outbox("buyer@example.com", subject="[GPU slip] PO-1\r\nBcc: x@example.com: slipped")
    assert notifications.send_outbox_email(email.pk) is True
    assert mailoutbox[0].subject == "[GPU slip] PO-1 Bcc: x@example.com: slipped"


def test_one_poisoned_digest_does_not_hold_back_another(mailoutbox: list) -> None:
    """The sweep, as beat runs it: the digest that can never be sent (a line break in a
    header) is marked undeliverable once and dropped; the clean one goes out."""
    clean = _outbox("buyer@example.com")
    # Newer, so the sweep (newest first) meets it first.
    poisoned = _outbox("watcher@example.com\nBcc: all@example.com")

    assert tasks.sweep_outbox() == 2

    clean.refresh_from_db()
    poisoned.refresh_from_db()
    assert [m.to for m in mailoutbox] == [["buyer@example.com"]]
    assert clean.status == OutboxEmail.Status.SENT
    assert poisoned.status == OutboxEmail.Status.UNDELIVERABLE
    assert poisoned.last_error.startswith("BadHeaderError: Header values can't contain newlines")
    assert notifications.sweep_outbox() == []  # never retried


class _RefusingBackend(BaseEmailBackend):
    """An SMTP server that refuses one recipient for good."""

    def send_messages(self, messages: list) -> int:
        for message in messages:
            if message.to == ["gone@example.com"]:
                raise smtplib.SMTPRecipientsRefused(
                    {"gone@example.com": (550, b"5.1.1 No such user")}
                )
            from django.core import mail

            mail.outbox.append(message)
        return len(messages)


def test_a_digest_the_server_refuses_does_not_hold_back_another(
    mailoutbox: list, settings: Any
) -> None:
    settings.EMAIL_BACKEND = f"{__name__}._RefusingBackend"
    clean = _outbox("buyer@example.com")
    refused = _outbox("gone@example.com")  # newer: swept first

    tasks.sweep_outbox()

    clean.refresh_from_db()
    refused.refresh_from_db()
    assert clean.status == OutboxEmail.Status.SENT
    assert [m.to for m in mailoutbox] == [["buyer@example.com"]]
    # A server's refusal is retried (orders.tasks, SMTP_FAILURES), not given up.
    assert refused.status == OutboxEmail.Status.FAILED
    assert "550" in refused.last_error


# --- PO numbers: one order whatever the case -----------------------------------------------------


def test_full_clean_refuses_a_po_number_taken_in_another_case_naming_the_order() -> None:
    PurchaseOrderFactory(po_number="PO-1")
    order = PurchaseOrderFactory.build(
        po_number="po-1", vendor=VendorFactory(), buyer=UserFactory()
    )
    with pytest.raises(ValidationError) as excinfo:
        order.full_clean()
    assert excinfo.value.message_dict == {
        "po_number": [
            "A purchase order with PO number PO-1 already exists (PO numbers are the same "
            "whatever their case): open that order, or give this one another number."
        ]
    }


def test_the_database_refuses_a_po_number_taken_in_another_case() -> None:
    PurchaseOrderFactory(po_number="PO-1")
    with pytest.raises(IntegrityError), transaction.atomic():
        PurchaseOrderFactory(po_number="po-1")
    assert list(PurchaseOrder.objects.values_list("po_number", flat=True)) == ["PO-1"]


def test_an_order_keeps_its_own_po_number_when_saved_again() -> None:
    order = PurchaseOrderFactory(po_number="PO-1")
    order.po_number = "po-1"  # its own number, in another case
    order.full_clean()
    order.save()


def test_the_admin_refuses_a_po_number_taken_in_another_case(admin_client_logged_in: Any) -> None:
    existing = PurchaseOrderFactory(po_number="PO-1")
    data = _order_post(existing, po_number="po-1")
    response = admin_client_logged_in.post(reverse("admin:orders_purchaseorder_add"), data)
    assert response.status_code == 200
    assert "A purchase order with PO number PO-1 already exists" in response.content.decode()
    assert PurchaseOrder.objects.count() == 1


def test_an_orders_file_row_po_1_is_the_recorded_order_po_1_in_any_case() -> None:
    first = orders_import(content=_csv([GOOD_ORDER | {"po_number": "PO-1"}]))
    assert first.ok, first.errors

    again = orders_import(content=_csv([GOOD_ORDER | {"po_number": "Po-1"}]))

    assert again.ok, again.errors
    assert again.created["orders"] == 0
    assert again.unchanged["orders"] == 1
    assert list(PurchaseOrder.objects.values_list("po_number", flat=True)) == ["PO-1"]


def test_rows_po_1_and_po_1_in_one_file_are_one_order() -> None:
    rows = [
        GOOD_ORDER | {"po_number": "PO-1"},
        GOOD_ORDER | {"po_number": "po-1", "gpu_model": "H100 SXM", "quantity": "16"},
    ]
    report = orders_import(content=_csv(rows))
    assert report.ok, report.errors
    order = PurchaseOrder.objects.get()
    assert order.po_number == "PO-1"
    assert order.lines.count() == 2


def test_a_quote_sheet_row_po_1_is_for_the_recorded_order_po_1() -> None:
    order = PurchaseOrderFactory(po_number="PO-1", placed_on=date(2023, 4, 14))
    content = _csv(
        [{"po_number": "Po-1", "quoted_on": "2023-04-20", "delivery_date": "2023-06-01"}],
        header=("po_number", "quoted_on", "delivery_date"),
    )
    report = quotes_import(content=content)
    assert report.ok, report.errors
    assert DeliveryQuote.objects.get().order == order


# --- Migration 0011, its functions called directly ----------------------------------------------


def test_cleaned_values_replaces_runs_and_keeps_unique_names_unique() -> None:
    rows = [
        (1, "PO-1"),
        (2, "po-1\r\n"),
        (3, "PO-2\r\n\tX"),
        (4, "\n"),
        (5, "PO-3\x85"),
        (6, "po-3\n"),
    ]
    new = MIGRATION.cleaned_values(
        [r for r in rows if r[0] != 1],
        taken=["PO-1"],
        unique_ci=True,
        may_be_empty=False,
        max_length=64,
    )
    assert new == {2: "po-1 (id 2)", 3: "PO-2 X", 4: "(id 4)", 5: "PO-3", 6: "po-3 (id 6)"}


def test_cleaned_values_stays_within_the_column() -> None:
    long = "A" * 63 + "\n"
    new = MIGRATION.cleaned_values([(12345, long)], taken=["A" * 63], unique_ci=True, max_length=64)
    assert new == {12345: "A" * 53 + " (id 12345)"}
    assert len(new[12345]) == 64


def test_cleaned_values_leaves_notes_that_may_repeat_and_be_empty_alone() -> None:
    new = MIGRATION.cleaned_values([(1, "late\n"), (2, "late"), (3, "\t")], max_length=500)
    assert new == {1: "late", 3: ""}


@pytest.fixture
def without_text_checks() -> Iterator[None]:
    """The database as it was before 0012: no single-line CHECKs on the PO and vendor tables,
    no case-insensitive unique PO number (the test's transaction puts them back)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("PRAGMA ignore_check_constraints = ON")
        else:
            for table, name in [
                ("orders_purchaseorder", "po_number_single_line"),
                ("orders_vendor", "vendor_name_single_line"),
            ]:
                cursor.execute(f"ALTER TABLE {table} DROP CONSTRAINT {name}")
        cursor.execute("DROP INDEX po_number_unique_ci")
    try:
        yield
    finally:
        if connection.vendor == "sqlite":
            with connection.cursor() as cursor:
                cursor.execute("PRAGMA ignore_check_constraints = OFF")


def test_the_migration_cleans_stored_values_and_says_what_it_changed(
    without_text_checks: None, capsys: Any
) -> None:
    kept = PurchaseOrderFactory(po_number="PO-7")
    clash = PurchaseOrderFactory(po_number="PO-8")
    PurchaseOrder.objects.filter(pk=clash.pk).update(po_number="po-7\r\n")
    plain = PurchaseOrderFactory(po_number="PO-9")
    PurchaseOrder.objects.filter(pk=plain.pk).update(po_number="PO-9\n\tA")
    vendor = VendorFactory()
    Vendor.objects.filter(pk=vendor.pk).update(name="Acme\x85Corp")

    changes = MIGRATION.clean_control_characters(django_apps, None)

    numbers = dict(PurchaseOrder.objects.values_list("pk", "po_number"))
    assert numbers == {kept.pk: "PO-7", clash.pk: f"po-7 (id {clash.pk})", plain.pk: "PO-9 A"}
    assert Vendor.objects.get(pk=vendor.pk).name == "Acme Corp"
    assert len(changes) == 3
    printed = capsys.readouterr().out
    assert "Removed control characters from 3 value(s):" in printed
    assert f"orders_purchaseorder.po_number id {plain.pk}: 'PO-9\\n\\tA' -> 'PO-9 A'" in printed
    assert MIGRATION.clean_control_characters(django_apps, None) == []  # nothing left


def test_the_migration_lists_po_numbers_that_differ_only_in_case(
    without_text_checks: None,
) -> None:
    orders = [PurchaseOrderFactory(po_number=n) for n in ("PO-1", "x-1", "Y-1", "PO-2", "PO-3")]
    PurchaseOrder.objects.filter(pk=orders[1].pk).update(po_number="po-1")
    PurchaseOrder.objects.filter(pk=orders[2].pk).update(po_number="Po-1")
    PurchaseOrder.objects.filter(pk=orders[4].pk).update(po_number="po-2\n")  # cleaned apart

    with pytest.raises(RuntimeError) as excinfo:
        MIGRATION.check_po_number_case_clashes(django_apps, None)

    message = str(excinfo.value)
    first, second, third = (o.pk for o in orders[:3])
    assert (
        f"1 group(s) of orders have numbers that differ only in case: PO-1 (order id {first}), "
        f"po-1 (order id {second}), Po-1 (order id {third}). Decide which order keeps"
    ) in message
    assert "run migrate again" in message
    assert "PO-2" not in message


def test_the_case_clash_check_passes_a_database_without_clashes() -> None:
    PurchaseOrderFactory(po_number="PO-1")
    PurchaseOrderFactory(po_number="PO-2")
    MIGRATION.check_po_number_case_clashes(django_apps, None)


def test_case_clashes_are_grouped_and_sorted() -> None:
    clashes = MIGRATION.po_number_case_clashes(
        [(5, "b-1"), (1, "A-1"), (2, "a-1"), (3, "B-1"), (4, "C-1")]
    )
    assert clashes == [[(1, "A-1"), (2, "a-1")], [(3, "B-1"), (5, "b-1")]]
