"""Receipts move an order's status; quotes are appended through one service."""

from datetime import date

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.test.utils import CaptureQueriesContext

from orders import services
from orders.models import Delivery, DeliveryQuote, PurchaseOrder
from tests.conftest import run_at_once
from tests.factories import GpuModelFactory, OrderLineFactory, PurchaseOrderFactory

Status = PurchaseOrder.Status
D = date.fromisoformat


@pytest.mark.django_db
def test_status_follows_receipts() -> None:
    order = PurchaseOrderFactory(status=Status.CONFIRMED)
    a100 = OrderLineFactory(order=order, quantity=8)
    a10 = OrderLineFactory(order=order, quantity=4, gpu_model=GpuModelFactory(name="A10"))

    services.delivery_record(line=a100, quantity=8, delivered_on=D("2023-05-15"))
    order.refresh_from_db()
    assert order.status == Status.PARTIALLY_RECEIVED

    last = services.delivery_record(line=a10, quantity=4, delivered_on=D("2023-05-20"))
    order.refresh_from_db()
    assert order.status == Status.RECEIVED

    services.delivery_remove(delivery=last)
    order.refresh_from_db()
    assert order.status == Status.PARTIALLY_RECEIVED


@pytest.mark.django_db
def test_a_receipt_does_not_uncancel_an_order() -> None:
    order = PurchaseOrderFactory(status=Status.CANCELLED)
    line = OrderLineFactory(order=order, quantity=2)
    services.delivery_record(line=line, quantity=2, delivered_on=D("2023-05-15"))
    order.refresh_from_db()
    assert order.status == Status.CANCELLED


@pytest.mark.django_db
def test_quote_add_validates_and_saves_nothing_on_error() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    with pytest.raises(ValidationError) as excinfo:
        services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-04-01"))
    assert "delivery_date" in excinfo.value.message_dict
    assert not order.quotes.exists()


@pytest.mark.django_db
def test_quote_add_defaults_quoted_on_to_today_in_the_time_zone(settings) -> None:
    settings.TIME_ZONE = "Pacific/Kiritimati"  # UTC+14: its date is ahead of UTC's most of the day
    from django.utils import timezone

    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    quote = services.quote_add(order=order, delivery_date=D("2099-01-01"))
    assert quote.quoted_on == timezone.localdate()


def _bulk_quotes(orders: list[PurchaseOrder], **kw) -> list[DeliveryQuote]:
    kw = {"quoted_on": D("2023-04-14"), "delivery_date": D("2023-05-15")} | kw
    return [DeliveryQuote(order=order, **kw) for order in orders]


@pytest.mark.django_db
def test_quotes_add_bulk_saves_all_with_fixed_queries_and_one_check_per_batch(
    django_assert_num_queries, django_capture_on_commit_callbacks, settings
) -> None:
    settings.SLIP_SCAN_BATCH_SIZE = 2
    few = [PurchaseOrderFactory() for _ in range(2)]
    many = [PurchaseOrderFactory() for _ in range(5)]
    with CaptureQueriesContext(connection) as with_2:
        services.quotes_add_bulk(quotes=_bulk_quotes(few), check=False)
    with (
        django_capture_on_commit_callbacks() as callbacks,
        django_assert_num_queries(len(with_2)),
    ):
        services.quotes_add_bulk(quotes=_bulk_quotes(many, note="  Re-quote sheet  "))
    assert DeliveryQuote.objects.count() == 7
    assert set(DeliveryQuote.objects.values_list("note", flat=True)) == {"", "Re-quote sheet"}
    assert len(callbacks) == 3  # 5 orders checked in batches of 2


@pytest.mark.django_db
def test_quotes_add_bulk_applies_the_model_rules_and_saves_nothing_on_error() -> None:
    order = PurchaseOrderFactory(placed_on=D("2023-04-14"))
    services.quote_add(order=order, quoted_on=D("2023-04-14"), delivery_date=D("2023-05-15"))
    quotes = [
        *_bulk_quotes([order], quoted_on=D("2023-05-01")),  # fine
        *_bulk_quotes([order], quoted_on=D("2023-04-01")),  # before the order was placed
        *_bulk_quotes([order]),  # already recorded
        *_bulk_quotes([order], quoted_on=D("2023-05-01")),  # twice in the list
    ]
    with pytest.raises(ValidationError) as excinfo:
        services.quotes_add_bulk(quotes=quotes)
    messages = excinfo.value.messages
    assert len(messages) == 3, messages
    assert messages[0].startswith(f"Quote 2 ({order.po_number}): Quoted-on date 2023-04-01")
    assert [m.split(":")[0] for m in messages[1:]] == [
        f"Quote {n} ({order.po_number})" for n in (3, 4)
    ]
    assert all("is already recorded" in m for m in messages[1:])
    assert order.quotes.count() == 1


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_receipts_cannot_over_receive() -> None:
    """Two receipts of 5 on a line of 8, recorded at the same moment: exactly one fits."""
    line = OrderLineFactory(quantity=8)
    outcomes = run_at_once(
        lambda: services.delivery_record(line=line, quantity=5, delivered_on=D("2023-05-15"))
    )

    assert sorted(type(o).__name__ for o in outcomes) == ["Delivery", "ValidationError"]
    assert sum(Delivery.objects.filter(line=line).values_list("quantity", flat=True)) == 5
