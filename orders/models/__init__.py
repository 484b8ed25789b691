from orders.models.alerts import AlertNotice, OutboxEmail, ScanRun, SlipAlert, open_alert_q
from orders.models.prices import ExchangeRate, PriceAlert, PriceQuote
from orders.models.procurement import (
    Delivery,
    DeliveryQuote,
    GpuModel,
    OrderLine,
    OrderStatus,
    PurchaseOrder,
    Vendor,
    VendorKind,
    currency_validator,
)
from orders.models.quotas import Allocation, Quota, Team, TeamSlipNotice
from orders.models.tallies import (
    LeadTimeTally,
    OrderLeadTimes,
    OrderScore,
    OrderTally,
    OrderTallyPart,
    VendorScoreTally,
)

__all__ = [
    "AlertNotice",
    "Allocation",
    "Delivery",
    "DeliveryQuote",
    "ExchangeRate",
    "GpuModel",
    "LeadTimeTally",
    "OrderLeadTimes",
    "OrderLine",
    "OrderScore",
    "OrderStatus",
    "OrderTally",
    "OrderTallyPart",
    "OutboxEmail",
    "PriceAlert",
    "PriceQuote",
    "PurchaseOrder",
    "Quota",
    "ScanRun",
    "SlipAlert",
    "Team",
    "TeamSlipNotice",
    "Vendor",
    "VendorKind",
    "VendorScoreTally",
    "currency_validator",
    "open_alert_q",
]
