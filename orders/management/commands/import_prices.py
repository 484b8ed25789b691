from orders import csv_format, imports
from orders.management.import_command import ImportCommand


class Command(ImportCommand):
    help = (
        "Import a price sheet: unit prices known vendors quoted for known GPU models. All or "
        "nothing; a price already recorded is not added again; new prices are checked for rises."
    )
    importer = staticmethod(imports.prices_import)
    columns = ", ".join(csv_format.PRICE_COLUMNS)
