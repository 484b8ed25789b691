"""orders.bulk.insert_ignoring_conflicts and update_by_pk on both databases the project runs
on."""

from __future__ import annotations

from datetime import date, datetime

import pytest
from django.db import DataError, IntegrityError, transaction
from django.utils import timezone

from orders.bulk import insert_ignoring_conflicts, update_by_pk
from orders.models import DeliveryQuote, SlipAlert
from tests.conftest import ON_POSTGRES
from tests.factories import PurchaseOrderFactory

pytestmark = pytest.mark.django_db


def _quote() -> DeliveryQuote:
    order = PurchaseOrderFactory(placed_on=date(2023, 4, 14))
    return DeliveryQuote.objects.create(
        order=order, quoted_on=date(2023, 4, 14), delivery_date=date(2023, 5, 15)
    )


def _insert(rows: list[tuple], when: datetime) -> list[tuple]:
    return insert_ignoring_conflicts(
        SlipAlert,
        columns=("order_id", "code", "severity", "quote_id", "message"),
        rows=rows,
        constants={"detected_at": when},
        returning=("pk", "order_id", "code"),
    )


def test_returns_only_the_rows_it_inserted_and_stores_every_value() -> None:
    quote = _quote()
    when = timezone.make_aware(datetime(2023, 6, 15, 7, 0, 0, 123456))
    rows = [
        (quote.order_id, "overdue", "critical", quote.pk, "Quoted delivery passed — ünïcode"),
        (quote.order_id, "past_need_by", "critical", quote.pk, "x"),
    ]
    first = _insert(rows, when)
    assert sorted(code for _, _, code in first) == ["overdue", "past_need_by"]
    again = _insert(
        [*rows, (quote.order_id, "lead_time_over_limit", "warning", quote.pk, "y")], when
    )
    assert [code for _, _, code in again] == ["lead_time_over_limit"]

    alert = SlipAlert.objects.get(pk=first[0][0] if first[0][2] == "overdue" else first[1][0])
    assert alert.message == "Quoted delivery passed — ünïcode"
    assert alert.detected_at == when
    assert alert.quote_id == quote.pk
    assert alert.severity == "critical"
    assert SlipAlert.objects.count() == 3


def test_no_rows_is_no_statement(django_assert_num_queries) -> None:
    with django_assert_num_queries(0):
        assert _insert([], timezone.now()) == []


def test_the_database_still_checks_every_row() -> None:
    quote = _quote()
    with pytest.raises(IntegrityError), transaction.atomic():  # CHECK constraint on code
        _insert([(quote.order_id, "no_such_rule", "warning", quote.pk, "x")], timezone.now())
    assert not SlipAlert.objects.exists()


@pytest.mark.postgres
def test_too_long_text_is_refused_not_truncated() -> None:
    assert ON_POSTGRES
    quote = _quote()
    with pytest.raises(DataError), transaction.atomic():
        _insert([(quote.order_id, "overdue", "critical", quote.pk, "x" * 301)], timezone.now())
    assert not SlipAlert.objects.exists()


def test_update_by_pk_sets_each_rows_own_value_in_one_statement(django_assert_num_queries) -> None:
    quote = _quote()
    rows = [
        (quote.order_id, code, "warning", quote.pk, "x") for code in ("overdue", "past_need_by")
    ]
    (a, *_), (b, *_) = _insert(rows, timezone.now())
    untouched = _insert(
        [(quote.order_id, "lead_time_over_limit", "warning", quote.pk, "z")], timezone.now()
    )
    with django_assert_num_queries(1):
        assert update_by_pk(SlipAlert, "message", [(a, "first — ü"), (b, "second")]) == 2
    messages = dict(SlipAlert.objects.values_list("pk", "message"))
    assert messages == {a: "first — ü", b: "second", untouched[0][0]: "z"}
    with django_assert_num_queries(0):
        assert update_by_pk(SlipAlert, "message", []) == 0
