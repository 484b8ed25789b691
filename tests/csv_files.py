"""CSV files for import tests: one good orders row to vary, and the writer that makes a file
of rows under a header (cells a row lacks are left empty)."""

from __future__ import annotations

import csv
from io import StringIO

from orders import csv_format

ORDER_HEADER = (
    *csv_format.ORDER_REQUIRED,
    "status",
    "need_by",
    *csv_format.ORDER_QUOTE_COLUMNS,
)
GOOD_ORDER = {
    "po_number": "PO-2023-0412",
    "vendor": "Pacific Silicon Distribution",
    "buyer_email": "alice@gpu-buyers.example",
    "gpu_model": "A100 80GB SXM",
    "quantity": "384",
    "unit_price": "10000.00",
    "currency": "USD",
    "placed_on": "2023-04-14",
    "status": "confirmed",
    "need_by": "2023-09-30",
    "quoted_on": "2023-04-14",
    "delivery_date": "2023-05-15",
}


def csv_file(
    rows: list[dict[str, str]], header: tuple[str, ...] = ORDER_HEADER, *, line_end: str = "\n"
) -> bytes:
    """The file's bytes. With line_end "\\r\\n" a cell holding a lone CR is quoted too."""
    out = StringIO()
    writer = csv.writer(out, lineterminator=line_end)
    writer.writerow(header)
    writer.writerows([row.get(c, "") for c in header] for row in rows)
    return out.getvalue().encode()
