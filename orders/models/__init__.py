from orders.models.alerts import AlertNotice, OutboxEmail, ScanRun, SlipAlert
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

__all__ = [
    "AlertNotice",
    "Delivery",
    "DeliveryQuote",
    "ExchangeRate",
    "GpuModel",
    "OrderLine",
    "OrderStatus",
    "OutboxEmail",
    "PriceAlert",
    "PriceQuote",
    "PurchaseOrder",
    "ScanRun",
    "SlipAlert",
    "Vendor",
    "VendorKind",
    "currency_validator",
]
