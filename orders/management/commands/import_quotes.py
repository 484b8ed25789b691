from orders import csv_format, imports
from orders.management.import_command import ImportCommand


class Command(ImportCommand):
    help = (
        "Import a vendor's re-quote sheet: delivery dates quoted for existing POs (a gpu_model "
        "aims a quote at that line). All or nothing; a quote already recorded is not added again."
    )
    importer = staticmethod(imports.quotes_import)
    columns = ", ".join(csv_format.QUOTE_COLUMNS)
