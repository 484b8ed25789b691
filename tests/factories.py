"""Factories for test data. Quotes and receipts are made through orders.services, as in the app."""

from datetime import date
from decimal import Decimal
from typing import Any

import factory
from django.contrib.auth import get_user_model
from factory.django import DjangoModelFactory

from orders.models import GpuModel, OrderLine, PriceQuote, PurchaseOrder, Quota, Team, Vendor
from orders.roles import Role, role_group

NO_ROLE = "none"


class UserFactory(DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True  # the role hook saves what it changes

    username = factory.Sequence(lambda n: f"buyer{n}")
    email = factory.LazyAttribute(lambda u: f"{u.username}@gpu-buyers.example")
    is_active = True

    @factory.post_generation
    def role(self, create: bool, extracted: Role | str | None, **kwargs: Any) -> None:
        """A buyer unless told otherwise: `UserFactory(role=Role.VIEWER)`, or
        `role=NO_ROLE` for an account without one. Only the group: `is_staff` stays as given
        (the grant_role command sets it too)."""
        if create and extracted != NO_ROLE:
            self.groups.add(role_group(Role.BUYER if extracted is None else Role(extracted)))


class VendorFactory(DjangoModelFactory):
    class Meta:
        model = Vendor

    name = factory.Sequence(lambda n: f"Vendor {n}")
    kind = Vendor.Kind.DISTRIBUTOR


class GpuModelFactory(DjangoModelFactory):
    class Meta:
        model = GpuModel
        django_get_or_create = ("name",)

    name = "A100 80GB SXM"
    family = "Ampere"
    memory_gb = 80


class PurchaseOrderFactory(DjangoModelFactory):
    class Meta:
        model = PurchaseOrder

    po_number = factory.Sequence(lambda n: f"PO-T-{n:05d}")
    vendor = factory.SubFactory(VendorFactory)
    buyer = factory.SubFactory(UserFactory)
    status = PurchaseOrder.Status.CONFIRMED
    placed_on = date(2023, 4, 14)
    currency = "USD"


class OrderLineFactory(DjangoModelFactory):
    class Meta:
        model = OrderLine

    order = factory.SubFactory(PurchaseOrderFactory)
    gpu_model = factory.SubFactory(GpuModelFactory)
    quantity = 8
    unit_price = Decimal("10000.00")


class PriceQuoteFactory(DjangoModelFactory):
    class Meta:
        model = PriceQuote

    vendor = factory.SubFactory(VendorFactory)
    gpu_model = factory.SubFactory(GpuModelFactory)
    unit_price = Decimal("10000.00")
    currency = "USD"
    quoted_on = date(2022, 11, 15)


class TeamFactory(DjangoModelFactory):
    class Meta:
        model = Team
        django_get_or_create = ("name",)

    name = factory.Sequence(lambda n: f"Team {n}")
    lead = factory.SubFactory(UserFactory)


class QuotaFactory(DjangoModelFactory):
    """A quota row as saved; changes under test go through orders.quotas.quota_save."""

    class Meta:
        model = Quota

    team = factory.SubFactory(TeamFactory)
    gpu_model = factory.SubFactory(GpuModelFactory)
    period_start = date(2023, 7, 1)
    period_end = date(2023, 12, 31)
    gpus = 384
