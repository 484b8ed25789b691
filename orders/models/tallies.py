"""Tallies: aggregates kept current in the transaction of every write that changes them, so
a chart or scorecard over every order reads a few thousand counters instead of every order.

`LeadTimeTally` holds how many quotes had each lead time, per month quoted, vendor and GPU
model (orders.slips.lead_time_counts says how a quote counts). `OrderLeadTimes` holds what
each order last added to it, so a change to an order is applied as the difference between
its new counts and those: exact, in the transaction of the write, and repairable
(`manage.py check_schedules --fix`). `VendorScoreTally` and `OrderScore` do the same for the
vendor scorecards (orders.vendor_tally), `OpenAlertTally` and `OrderOpenAlerts` for the
order list's and the dashboard's counts of orders and open alerts (orders.order_tally).
"""

from __future__ import annotations

from django.db import models

from orders.models.procurement import PurchaseOrder


class LeadTimeTally(models.Model):
    """How many quotes (`quotes`) had this lead time. The vendor and GPU model are plain keys,
    not foreign keys: a row is a counter, and `gpu_model_pk` 0 (orders.slips.EVERY_QUOTE)
    counts each quote once. Rows at 0 may stay; readers skip them."""

    month = models.DateField()
    vendor_pk = models.IntegerField()
    gpu_model_pk = models.IntegerField()
    lead_days = models.IntegerField()
    quotes = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["gpu_model_pk", "month", "vendor_pk", "lead_days"],
                name="leadtimetally_key",
            )
        ]

    def __str__(self) -> str:
        return f"{self.month:%Y-%m} vendor {self.vendor_pk}: {self.quotes} x {self.lead_days} d"


class OrderLeadTimes(models.Model):
    """What an order adds to LeadTimeTally: [month ISO, vendor pk, GPU model pk, lead days,
    quotes] rows, sorted."""

    order = models.OneToOneField(
        PurchaseOrder, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    counts = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"lead times of order {self.order_id}"


class ScoreCounts(models.Model):
    """A vendor scorecard's counts (orders.vendor_tally.COUNTS) under a key: the vendor, and
    the slip of the orders (`quoted` False: orders without a quote, slip_days 0 there)."""

    vendor_pk = models.IntegerField()
    quoted = models.BooleanField()
    slip_days = models.IntegerField()
    orders = models.IntegerField(default=0)
    units = models.BigIntegerField(default=0)  # GPUs: a line holds up to 2^31 - 1
    received = models.IntegerField(default=0)
    on_time = models.IntegerField(default=0)
    on_time_latest = models.IntegerField(default=0)
    requotes = models.IntegerField(default=0)
    open_alerts = models.IntegerField(default=0)

    class Meta:
        abstract = True


class VendorScoreTally(ScoreCounts):
    """The vendor scorecards' figures summed over a vendor's orders with the same slip
    (orders.vendor_tally says what an order adds): `quoted` False holds the orders without a
    quote (slip_days 0 there), so a median of slips reads the quoted rows alone."""

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vendor_pk", "quoted", "slip_days"], name="vendorscoretally_key"
            )
        ]

    def __str__(self) -> str:
        return f"vendor {self.vendor_pk}, slip {self.slip_days}: {self.orders} orders"


class OrderScore(ScoreCounts):
    """What an order adds to VendorScoreTally (all counts 0 for a draft)."""

    order = models.OneToOneField(
        PurchaseOrder, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )

    def __str__(self) -> str:
        return f"score of order {self.order_id}"


class OrderTally(models.Model):
    """Orders and their open slip alerts (orders.models.open_alert_q), counted per vendor,
    buyer, status and whether the order is slipping (orders.slips.is_slipping): under
    `code` "" each order once, under its rule code and severity each open alert once. The
    order list's and the dashboard's counts for viewers who see every order
    (orders.order_tally). Plain keys, not foreign keys: a row is a counter. Rows at 0 may
    stay; readers sum them."""

    ORDER = ""  # the `code` (and severity) of the orders' own counters

    vendor_pk = models.IntegerField()
    buyer_pk = models.IntegerField()
    status = models.CharField(max_length=20)
    slipping = models.BooleanField()
    code = models.CharField(max_length=32)
    severity = models.CharField(max_length=16)
    n = models.IntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["vendor_pk", "buyer_pk", "status", "slipping", "code", "severity"],
                name="ordertally_key",
            )
        ]

    def __str__(self) -> str:
        what = self.code or "orders"
        return f"vendor {self.vendor_pk}, buyer {self.buyer_pk}, {self.status}: {self.n} {what}"


class OrderTallyPart(models.Model):
    """What an order adds to OrderTally: [vendor pk, buyer pk, status, slipping, code,
    severity, n] rows, sorted."""

    order = models.OneToOneField(
        PurchaseOrder, on_delete=models.CASCADE, primary_key=True, related_name="+"
    )
    counts = models.JSONField(default=list)

    def __str__(self) -> str:
        return f"order tally part of order {self.order_id}"
