from orders import csv_format, imports
from orders.management.import_command import ImportCommand


class Command(ImportCommand):
    help = (
        "Import purchase orders from a CSV file, one row per order line (plus an optional "
        "whole-order quote). All or nothing; importing the same file again changes nothing."
    )
    importer = staticmethod(imports.orders_import)
    columns = ", ".join((*csv_format.ORDER_COLUMNS, *csv_format.ORDER_QUOTE_COLUMNS))
