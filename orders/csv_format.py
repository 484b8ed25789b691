"""The CSV contracts other tools rely on (documented in the README). Exports write exactly
these headers; imports read them (derived columns of the orders file are ignored)."""

from __future__ import annotations

from dataclasses import dataclass

# One row per order line.
ORDER_COLUMNS: tuple[str, ...] = (
    "po_number",
    "vendor",
    "buyer_email",
    "status",
    "gpu_model",
    "quantity",
    "unit_price",
    "currency",
    "placed_on",
    "need_by",
    "baseline_delivery_date",
    "current_delivery_date",
    "baseline_lead_days",
    "current_lead_days",
    "slip_days",
    "requote_count",
    "open_alerts",
)
ORDER_REQUIRED: tuple[str, ...] = (
    "po_number",
    "vendor",
    "buyer_email",
    "gpu_model",
    "quantity",
    "unit_price",
    "currency",
    "placed_on",
)
# Computed by the tracker: read back from an export but never imported.
ORDER_DERIVED: tuple[str, ...] = (
    "baseline_delivery_date",
    "current_delivery_date",
    "baseline_lead_days",
    "current_lead_days",
    "slip_days",
    "requote_count",
    "open_alerts",
)
# Optional on an orders import: adds one quote for the order.
ORDER_QUOTE_COLUMNS: tuple[str, ...] = ("quoted_on", "delivery_date")

# Every quote of every order. gpu_model (last, empty for a whole-order quote) aims a quote at
# one line; it is what makes an export -> import round trip lossless.
QUOTE_COLUMNS: tuple[str, ...] = ("po_number", "quoted_on", "delivery_date", "note", "gpu_model")
QUOTE_REQUIRED: tuple[str, ...] = ("po_number", "quoted_on", "delivery_date")

# A vendor's price sheet (and the price history export): one price per row.
PRICE_COLUMNS: tuple[str, ...] = (
    "vendor",
    "gpu_model",
    "unit_price",
    "currency",
    "quoted_on",
    "note",
)
PRICE_REQUIRED: tuple[str, ...] = ("vendor", "gpu_model", "unit_price", "currency", "quoted_on")


@dataclass(frozen=True)
class ImportFormat:
    """What an import reads: every column it knows, in file order; those a file must have;
    and those it reads past (an export's derived columns)."""

    columns: tuple[str, ...]
    required: tuple[str, ...]
    ignored: tuple[str, ...] = ()

    @property
    def imported(self) -> tuple[str, ...]:
        """The columns whose values are imported, in file order."""
        return tuple(c for c in self.columns if c not in self.ignored)

    @property
    def optional(self) -> tuple[str, ...]:
        """The imported columns a file may leave out."""
        return tuple(c for c in self.imported if c not in self.required)


ORDERS_IMPORT = ImportFormat(
    columns=(*ORDER_COLUMNS, *ORDER_QUOTE_COLUMNS), required=ORDER_REQUIRED, ignored=ORDER_DERIVED
)
QUOTES_IMPORT = ImportFormat(columns=QUOTE_COLUMNS, required=QUOTE_REQUIRED)
PRICES_IMPORT = ImportFormat(columns=PRICE_COLUMNS, required=PRICE_REQUIRED)
