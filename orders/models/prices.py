"""What GPUs cost: every price a vendor quoted (or charged, on an order line), dated exchange
rates for the rare conversion, and price-rise alerts.

Prices in different currencies are never added together; a figure crosses currencies only
through an ExchangeRate valid on the day it is for.
"""

from __future__ import annotations

from decimal import Decimal

from django.conf import settings
from django.core.validators import MinValueValidator
from django.db import models
from django.db.models import F, Q
from django.utils import timezone

from orders.history import AuditedHistory
from orders.models.procurement import GpuModel, Vendor, currency_validator
from orders.text import single_line, single_line_check


class PriceQuote(models.Model):
    class Source(models.TextChoices):
        MANUAL = "manual", "Entered by hand"
        IMPORT = "import", "Imported price sheet"
        ORDER = "order", "Charged on an order"

    vendor = models.ForeignKey(Vendor, on_delete=models.PROTECT, related_name="prices")
    gpu_model = models.ForeignKey(
        GpuModel, on_delete=models.PROTECT, related_name="prices", verbose_name="GPU model"
    )
    unit_price = models.DecimalField(
        max_digits=14,
        decimal_places=2,
        validators=[
            MinValueValidator(Decimal("0.01"), "Unit price must be positive, not %(value)s.")
        ],
    )
    currency = models.CharField(max_length=3, default="USD", validators=[currency_validator])
    quoted_on = models.DateField()
    source = models.CharField(max_length=10, choices=Source.choices, default=Source.MANUAL)
    note = models.CharField(max_length=200, blank=True, validators=[single_line("Price note")])
    created_at = models.DateTimeField(default=timezone.now)

    history = AuditedHistory(no_db_index=["vendor", "gpu_model"])

    class Meta:
        ordering = ["-quoted_on", "-id"]
        verbose_name = "price quote"
        constraints = [
            # The same price for the same GPU from the same vendor on the same day is one fact,
            # whichever sheet or order it came from: re-importing changes nothing.
            models.UniqueConstraint(
                fields=["vendor", "gpu_model", "currency", "quoted_on", "unit_price"],
                name="pricequote_once_per_day_and_price",
                violation_error_message="This vendor already quoted this price on that day.",
            ),
            models.CheckConstraint(
                condition=Q(unit_price__gt=0), name="pricequote_unit_price_positive"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$"), name="pricequote_currency_iso_code"
            ),
            models.CheckConstraint(
                condition=Q(source__in=["manual", "import", "order"]),
                name="pricequote_source_valid",
            ),
            single_line_check("note", name="pricequote_note_single_line"),
        ]
        indexes = [models.Index(fields=["gpu_model", "currency", "quoted_on"])]

    def __str__(self) -> str:
        return f"{self.gpu_model} from {self.vendor}: {self.unit_price} {self.currency}"


class ExchangeRate(models.Model):
    """1 unit of `currency` = `rate` units of `to_currency`, from `valid_on` until the next."""

    currency = models.CharField(max_length=3, validators=[currency_validator])
    to_currency = models.CharField(max_length=3, validators=[currency_validator])
    rate = models.DecimalField(
        max_digits=18,
        decimal_places=8,
        validators=[MinValueValidator(Decimal("0.00000001"), "Rate must be positive.")],
    )
    valid_on = models.DateField()

    class Meta:
        ordering = ["currency", "to_currency", "-valid_on"]
        constraints = [
            models.UniqueConstraint(
                fields=["currency", "to_currency", "valid_on"], name="exchangerate_once_per_day"
            ),
            models.CheckConstraint(condition=Q(rate__gt=0), name="exchangerate_rate_positive"),
            models.CheckConstraint(
                condition=~Q(currency=F("to_currency")), name="exchangerate_two_currencies"
            ),
            models.CheckConstraint(
                condition=Q(currency__regex=r"^[A-Z]{3}$") & Q(to_currency__regex=r"^[A-Z]{3}$"),
                name="exchangerate_iso_codes",
            ),
        ]

    def __str__(self) -> str:
        return f"1 {self.currency} = {self.rate} {self.to_currency} from {self.valid_on}"


class PriceAlert(models.Model):
    """A vendor's latest price for a GPU model is THRESHOLD % over its window low. One per
    triggering price (the unique constraint makes rescans harmless)."""

    vendor = models.ForeignKey(Vendor, on_delete=models.CASCADE, related_name="price_alerts")
    gpu_model = models.ForeignKey(
        GpuModel, on_delete=models.CASCADE, related_name="price_alerts", verbose_name="GPU model"
    )
    currency = models.CharField(max_length=3)
    price = models.ForeignKey(
        PriceQuote,
        on_delete=models.CASCADE,
        related_name="alerts",
        help_text="The latest price, which made this true.",
    )
    low = models.ForeignKey(
        PriceQuote,
        on_delete=models.CASCADE,
        related_name="+",
        help_text="The lowest price in the window before it.",
    )
    # Wide enough for any two prices a PriceQuote can hold (0.01 -> 999,999,999,999.99 is
    # +9,999,999,999,999,800%): a typo in a price sheet must raise an alert, not an error.
    rise_percent = models.DecimalField(max_digits=20, decimal_places=2)
    message = models.CharField(max_length=300)
    detected_at = models.DateTimeField(default=timezone.now)
    notified_at = models.DateTimeField(null=True, blank=True)
    acknowledged_by = models.ForeignKey(
        settings.AUTH_USER_MODEL,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="+",
    )
    acknowledged_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-detected_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["price"], name="pricealert_one_per_price"),
            models.CheckConstraint(
                condition=Q(acknowledged_by__isnull=True) | Q(acknowledged_at__isnull=False),
                name="pricealert_acknowledged_has_time",
            ),
        ]
        indexes = [models.Index(fields=["vendor", "gpu_model", "currency"])]

    def __str__(self) -> str:
        return f"{self.gpu_model} from {self.vendor}: +{self.rise_percent}%"

    code = "price_rise"

    @property
    def is_acknowledged(self) -> bool:
        return self.acknowledged_at is not None
