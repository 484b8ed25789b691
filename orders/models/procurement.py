"""GPU purchase orders, the delivery dates vendors quote for them, and what actually arrived.

Invariants live twice: in `clean()` (messages naming the field and value, shown by the admin
and raised by services) and in the database, as CHECK/UNIQUE constraints where one row can
express them and as triggers (orders/db_triggers.py) where they span tables.
"""

from __future__ import annotations

from collections.abc import Collection
from decimal import Decimal

from django.conf import settings
from django.core.exceptions import NON_FIELD_ERRORS, ValidationError
from django.core.validators import MinValueValidator, RegexValidator
from django.db import models
from django.db.models import F, Q, Sum, Value
from django.db.models.functions import Lower

from orders.history import AuditedHistory
from orders.querysets import DeliveryQuoteQuerySet, OrderLineQuerySet, PurchaseOrderQuerySet
from orders.slips import FIGURES
from orders.text import single_line, single_line_check

currency_validator = RegexValidator(
    r"^[A-Z]{3}$", "Currency must be a three-letter ISO 4217 code in capitals, e.g. USD."
)


# The code of the error for a PO number another order has (in any case): PurchaseOrder's
# validate_constraints replaces the constraint's message with one naming that order.
PO_NUMBER_TAKEN = "po_number_taken"


class VendorKind(models.TextChoices):
    OEM = "oem", "OEM"
    DISTRIBUTOR = "distributor", "Distributor"
    RESELLER = "reseller", "Reseller"
    CLOUD = "cloud", "Cloud provider"


class OrderStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    PLACED = "placed", "Placed"
    CONFIRMED = "confirmed", "Confirmed"
    PARTIALLY_RECEIVED = "partially_received", "Partially received"
    RECEIVED = "received", "Received"
    CANCELLED = "cancelled", "Cancelled"


class Vendor(models.Model):
    Kind = VendorKind

    name = models.CharField(max_length=200, validators=[single_line("Vendor name")])
    kind = models.CharField(max_length=20, choices=VendorKind.choices)
    contact_email = models.EmailField(blank=True)
    website = models.URLField(blank=True)
    notes = models.TextField(blank=True)
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="vendor_name_unique_ci",
                violation_error_message="A vendor with this name already exists.",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="vendor_name_not_blank"),
            single_line_check("name", name="vendor_name_single_line"),
            models.CheckConstraint(
                condition=Q(kind__in=VendorKind.values), name="vendor_kind_valid"
            ),
        ]

    def __str__(self) -> str:
        return self.name


class GpuModel(models.Model):
    name = models.CharField(
        max_length=100,
        help_text='e.g. "A100 80GB SXM", "H100 SXM"',
        validators=[single_line("GPU model name")],
    )
    family = models.CharField(
        max_length=50,
        blank=True,
        help_text='e.g. "Ampere", "Hopper"',
        validators=[single_line("GPU family")],
    )
    memory_gb = models.PositiveSmallIntegerField(
        "memory (GB)",
        validators=[MinValueValidator(1, "Memory must be at least 1 GB, not %(value)s.")],
    )

    class Meta:
        ordering = ["name"]
        verbose_name = "GPU model"
        constraints = [
            models.UniqueConstraint(
                Lower("name"),
                name="gpumodel_name_unique_ci",
                violation_error_message="A GPU model with this name already exists.",
            ),
            models.CheckConstraint(condition=~Q(name=""), name="gpumodel_name_not_blank"),
            single_line_check("name", name="gpumodel_name_single_line"),
            single_line_check("family", name="gpumodel_family_single_line"),
            models.CheckConstraint(condition=Q(memory_gb__gt=0), name="gpumodel_memory_positive"),
        ]

    def __str__(self) -> str:
        return self.name


class StoredSchedule(models.Model):
    """The schedule (orders.slips.Figures) stored on the row, so pages filter and sort on
    it: written by orders.schedules in the transaction of every write that changes it, never
    by a form. Dates and days are NULL until a quote applies."""

    baseline_delivery_date = models.DateField("first quoted date", null=True, editable=False)
    current_delivery_date = models.DateField("current date", null=True, editable=False)
    baseline_lead_days = models.IntegerField("first lead time (days)", null=True, editable=False)
    current_lead_days = models.IntegerField("lead time (days)", null=True, editable=False)
    slip_days = models.IntegerField("slip (days)", null=True, editable=False)
    requote_count = models.PositiveIntegerField("re-quotes", default=0, editable=False)

    class Meta:
        abstract = True


SCHEDULE_FIELDS = list(FIGURES)


class PurchaseOrder(StoredSchedule):
    Status = OrderStatus

    OPEN_STATUSES = (OrderStatus.PLACED, OrderStatus.CONFIRMED, OrderStatus.PARTIALLY_RECEIVED)

    # Unique whatever its case (po_number_unique_ci below); the plain index serves sorting
    # and exact lookups by number (exports, the dashboard).
    po_number = models.CharField(
        "PO number", max_length=64, db_index=True, validators=[single_line("PO number")]
    )
    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="orders")
    buyer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="purchase_orders"
    )
    watchers = models.ManyToManyField(
        settings.AUTH_USER_MODEL,
        blank=True,
        related_name="watched_orders",
        help_text="Other people told about slips on this order.",
    )
    status = models.CharField(
        max_length=20, choices=OrderStatus.choices, default=OrderStatus.PLACED
    )
    placed_on = models.DateField()
    need_by = models.DateField(
        null=True, blank=True, help_text="When the team needs the hardware in hand."
    )
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # The quote giving current_delivery_date (the one a slip alert names). No database
    # constraint: it is derived like the dates, and rewritten with them.
    current_quote = models.ForeignKey(
        "DeliveryQuote",
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        null=True,
        editable=False,
        related_name="+",
    )

    objects = PurchaseOrderQuerySet.as_manager()
    # updated_at changes on every save: the record's own date says when. Watchers (who is
    # emailed about slips) are not part of the trail.
    history = AuditedHistory(
        excluded_fields=["updated_at", *SCHEDULE_FIELDS, "current_quote"],
        no_db_index=["po_number", "vendor", "buyer"],
    )

    class Meta:
        ordering = ["-placed_on", "-id"]
        verbose_name = "purchase order"
        # Without these, view/change reach only the orders a user buys or watches
        # (orders/permissions.py).
        permissions = [
            ("view_all_purchaseorders", "Can view every purchase order"),
            ("change_all_purchaseorders", "Can change every purchase order"),
        ]
        constraints = [
            models.UniqueConstraint(
                Lower("po_number"),
                name="po_number_unique_ci",
                violation_error_code=PO_NUMBER_TAKEN,
                violation_error_message="A purchase order with this PO number already exists.",
            ),
            models.CheckConstraint(condition=~Q(po_number=""), name="po_number_not_blank"),
            single_line_check("po_number", name="po_number_single_line"),
            models.CheckConstraint(
                condition=Q(status__in=OrderStatus.values), name="po_status_valid"
            ),
            models.CheckConstraint(
                condition=Q(need_by__isnull=True) | Q(need_by__gte=F("placed_on")),
                name="po_need_by_not_before_placed_on",
                violation_error_message="Need-by date cannot be before the order was placed.",
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="po_currency_iso_code"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "placed_on"]),
            # The changelist's default order, and its sortable schedule columns.
            models.Index(fields=["-placed_on", "-id"], name="po_placed_on_id_desc"),
            models.Index(fields=["current_delivery_date", "id"], name="po_current_date"),
            models.Index(fields=["baseline_delivery_date", "id"], name="po_baseline_date"),
            models.Index(fields=["slip_days", "id"], name="po_slip_days"),
            # The changelist's vendor and slipping filters together (counted from the index).
            models.Index(fields=["vendor", "slip_days"], name="po_vendor_slip_days"),
            # The dashboard's list: open slipping orders, worst first (dashboard
            # .slipping_orders' order), read a page at a time from the index.
            models.Index(
                F("slip_days").desc(),
                "need_by",  # ascending, nulls last: PostgreSQL's default order, SQLite's only
                "po_number",
                name="po_open_slipping_worst_first",
                condition=Q(
                    status__in=[
                        OrderStatus.PLACED,
                        OrderStatus.CONFIRMED,
                        OrderStatus.PARTIALLY_RECEIVED,
                    ],
                    slip_days__gt=0,
                ),
            ),
        ]

    def __str__(self) -> str:
        return self.po_number

    def validate_constraints(self, exclude: Collection[str] | None = None) -> None:
        """The Meta constraints, as Django checks them; a PO number another order already has
        (in any case) is reported on the field, naming that order."""
        try:
            super().validate_constraints(exclude=exclude)
        except ValidationError as exc:
            errors = exc.update_error_dict({})
            general = errors.pop(NON_FIELD_ERRORS, [])
            if others := [e for e in general if e.code != PO_NUMBER_TAKEN]:
                errors[NON_FIELD_ERRORS] = others
            if len(others) < len(general):
                errors.setdefault("po_number", []).append(
                    ValidationError(self.po_number_taken_message(), code=PO_NUMBER_TAKEN)
                )
            raise ValidationError(errors) from None

    def po_number_taken_message(self) -> str:
        """What to say when this order's PO number is taken: the number as the existing
        order spells it, since PO-1 and po-1 are one order."""
        taken = (
            PurchaseOrder.objects.alias(lower=Lower("po_number"))
            .filter(lower=Lower(Value(self.po_number)))
            .exclude(pk=self.pk)
            .values_list("po_number", flat=True)
            .first()
        )
        return (
            f"A purchase order with PO number {taken or self.po_number} already exists (PO "
            "numbers are the same whatever their case): open that order, or give this one "
            "another number."
        )

    def clean(self) -> None:
        errors: dict[str, str] = {}
        if self.need_by and self.placed_on and self.need_by < self.placed_on:
            errors["need_by"] = (
                f"Need-by date {self.need_by.isoformat()} is before the order was placed "
                f"({self.placed_on.isoformat()})."
            )
        if self.buyer_id and not self.buyer.email:
            errors["buyer"] = (
                f"Buyer {self.buyer} has no email address; alerts could not reach them."
            )
        if self.pk and self.placed_on:
            earliest = (
                DeliveryQuote.objects.filter(order_id=self.pk)
                .filter(Q(quoted_on__lt=self.placed_on) | Q(delivery_date__lt=self.placed_on))
                .order_by("quoted_on")
                .first()
            )
            if earliest is not None:
                errors["placed_on"] = (
                    f"Placed-on date {self.placed_on.isoformat()} is after a quote this order "
                    f"already has (quoted {earliest.quoted_on.isoformat()}, delivery "
                    f"{earliest.delivery_date.isoformat()})."
                )
            elif Delivery.objects.filter(
                line__order_id=self.pk, delivered_on__lt=self.placed_on
            ).exists():
                errors["placed_on"] = (
                    f"Placed-on date {self.placed_on.isoformat()} is after a recorded receipt."
                )
        if errors:
            raise ValidationError(errors)

    @property
    def is_open(self) -> bool:
        return self.status in self.OPEN_STATUSES


class OrderLine(StoredSchedule):
    order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="lines")
    gpu_model = models.ForeignKey(
        GpuModel, on_delete=models.PROTECT, related_name="order_lines", verbose_name="GPU model"
    )
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1, "Quantity must be at least 1, not %(value)s.")]
    )
    unit_price = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        validators=[MinValueValidator(Decimal("0"), "Unit price cannot be negative (%(value)s).")],
        help_text="Price per GPU in the order's currency.",
    )

    objects = OrderLineQuerySet.as_manager()
    # The schedule is derived from the quotes, whose own trail says what changed it.
    history = AuditedHistory(excluded_fields=SCHEDULE_FIELDS, no_db_index=["gpu_model"])

    class Meta:
        ordering = ["order", "id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="orderline_quantity_positive",
                violation_error_message="Quantity must be at least 1.",
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gte=0),
                name="orderline_unit_price_not_negative",
                violation_error_message="Unit price cannot be negative.",
            ),
            models.UniqueConstraint(
                fields=["order", "gpu_model"],
                name="orderline_one_line_per_gpu_model",
                violation_error_message="This order already has a line for that GPU model.",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.gpu_model} on {self.order}"

    @property
    def line_total(self) -> Decimal:
        return self.quantity * self.unit_price

    def clean(self) -> None:
        if self.pk and self.quantity is not None:
            received = self.deliveries.aggregate(total=Sum("quantity"))["total"] or 0
            if self.quantity < received:
                raise ValidationError(
                    {
                        "quantity": f"Quantity {self.quantity} is below the {received} "
                        "already received on this line."
                    }
                )
        if self.pk:
            # GPUs promised to teams (orders.models.quotas.Allocation).
            promised = self.allocations.aggregate(
                total=Sum("gpus"),
                other_model=models.Count("pk", filter=~Q(quota__gpu_model_id=self.gpu_model_id)),
            )
            if self.quantity is not None and self.quantity < (promised["total"] or 0):
                raise ValidationError(
                    {
                        "quantity": f"Quantity {self.quantity} is below the "
                        f"{promised['total']} GPUs allocated to teams on this line."
                    }
                )
            if promised["other_model"]:
                raise ValidationError(
                    {
                        "gpu_model": "GPUs of this line are allocated to teams under quotas of "
                        "its current GPU model; remove those allocations first."
                    }
                )


class DeliveryQuote(models.Model):
    """One delivery date a vendor quoted. Append-only: a correction is a new quote.

    The earliest quote that applies to a line is its baseline, the latest its current date.
    A quote with a line applies to that line only; one without applies to every line.
    """

    order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="quotes")
    line = models.ForeignKey(
        OrderLine,
        on_delete=models.CASCADE,
        null=True,
        blank=True,
        related_name="quotes",
        help_text="Only for split shipments: the line this date applies to. Empty = whole order.",
    )
    quoted_on = models.DateField(help_text="When the vendor gave this date.")
    delivery_date = models.DateField(help_text="The delivery date the vendor quoted.")
    note = models.CharField(max_length=500, blank=True, validators=[single_line("Quote note")])
    source = models.CharField(
        max_length=100,
        blank=True,
        help_text='Where it came from: "email", "portal", a file...',
        validators=[single_line("Quote source")],
    )
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = DeliveryQuoteQuerySet.as_manager()
    # Creations (and deletions with their order): a quote never changes, nor can its
    # history be reverted (settings.SIMPLE_HISTORY_REVERT_DISABLED, orders.admin_history).
    history = AuditedHistory(no_db_index=["line", "recorded_by"])

    # What a quote promised; never changed once recorded (a trigger enforces it too).
    HISTORY_FIELDS = ("order_id", "line_id", "quoted_on", "delivery_date")

    class Meta:
        ordering = ["quoted_on", "id"]
        verbose_name = "delivery quote"
        constraints = [
            models.CheckConstraint(
                condition=Q(delivery_date__gte=F("quoted_on")),
                name="quote_delivery_not_before_quoted_on",
                violation_error_message="A quoted delivery date cannot be before the day it "
                "was quoted.",
            ),
            # The same promise recorded twice is a duplicate, not a re-quote.
            models.UniqueConstraint(
                fields=["order", "quoted_on", "delivery_date"],
                condition=Q(line__isnull=True),
                name="quote_unique_per_order",
                violation_error_message="This order already has that quote.",
            ),
            models.UniqueConstraint(
                fields=["line", "quoted_on", "delivery_date"],
                condition=Q(line__isnull=False),
                name="quote_unique_per_line",
                violation_error_message="This line already has that quote.",
            ),
            single_line_check("note", name="quote_note_single_line"),
            single_line_check("source", name="quote_source_single_line"),
        ]
        indexes = [models.Index(fields=["order", "line", "quoted_on", "id"])]

    def __str__(self) -> str:
        return f"{self.order}: {self.delivery_date.isoformat()} (quoted {self.quoted_on})"

    def clean(self) -> None:
        if self.pk:
            original = DeliveryQuote.objects.filter(pk=self.pk).values(*self.HISTORY_FIELDS).first()
            if original and any(getattr(self, f) != v for f, v in original.items()):
                raise ValidationError(
                    "Delivery quotes are history and cannot be changed: add a new quote instead."
                )
        errors: dict[str, str] = {}
        # getattr: on the admin's add page the order is not saved yet but is attached.
        order = getattr(self, "order", None)
        if order is not None and order.placed_on:
            placed = order.placed_on.isoformat()
            if self.quoted_on and self.quoted_on < order.placed_on:
                errors["quoted_on"] = (
                    f"Quoted-on date {self.quoted_on.isoformat()} is before the order was "
                    f"placed ({placed})."
                )
            if self.delivery_date and self.delivery_date < order.placed_on:
                errors["delivery_date"] = (
                    f"Delivery date {self.delivery_date.isoformat()} is before the order was "
                    f"placed ({placed})."
                )
        if (
            "delivery_date" not in errors
            and self.delivery_date
            and self.quoted_on
            and self.delivery_date < self.quoted_on
        ):
            errors["delivery_date"] = (
                f"Delivery date {self.delivery_date.isoformat()} is before the day it was "
                f"quoted ({self.quoted_on.isoformat()})."
            )
        if self.line_id and self.order_id and self.line.order_id != self.order_id:
            errors["line"] = f"Line {self.line} belongs to another order."
        if errors:
            raise ValidationError(errors)


class Delivery(models.Model):
    """GPUs of one order line that really arrived, on the day they arrived."""

    # The order is implied by the line; it is stored too (and kept consistent by a trigger)
    # so receipts list, filter and inline on the order without a join through lines.
    order = models.ForeignKey(PurchaseOrder, on_delete=models.CASCADE, related_name="deliveries")
    line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="deliveries")
    quantity = models.PositiveIntegerField(
        validators=[MinValueValidator(1, "Received quantity must be at least 1, not %(value)s.")]
    )
    delivered_on = models.DateField(help_text="The day the GPUs arrived (may be in the past).")
    note = models.CharField(max_length=500, blank=True, validators=[single_line("Receipt note")])
    recorded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    history = AuditedHistory(no_db_index=["line", "recorded_by"])

    class Meta:
        ordering = ["delivered_on", "id"]
        verbose_name_plural = "deliveries"
        constraints = [
            models.CheckConstraint(
                condition=Q(quantity__gt=0),
                name="delivery_quantity_positive",
                violation_error_message="Received quantity must be at least 1.",
            ),
            single_line_check("note", name="delivery_note_single_line"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} x {self.line.gpu_model} on {self.delivered_on}"

    def clean(self) -> None:
        if not self.line_id:
            return
        errors: dict[str, str] = {}
        line = self.line
        order = getattr(self, "order", None) or line.order
        if order.pk and line.order_id != order.pk:
            errors["line"] = f"Line {line} belongs to another order."
        placed_on = order.placed_on
        if self.delivered_on and placed_on and self.delivered_on < placed_on:
            errors["delivered_on"] = (
                f"Delivery date {self.delivered_on.isoformat()} is before the order was placed "
                f"({placed_on.isoformat()})."
            )
        if self.quantity:
            already = (
                Delivery.objects.filter(line_id=line.pk)
                .exclude(pk=self.pk)
                .aggregate(total=Sum("quantity"))["total"]
                or 0
            )
            if already + self.quantity > line.quantity:
                errors["quantity"] = (
                    f"Receiving {self.quantity} would exceed the {line.quantity} ordered on "
                    f"this line ({already} already received)."
                )
        if errors:
            raise ValidationError(errors)
