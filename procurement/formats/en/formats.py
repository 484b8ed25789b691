"""Date formats for the 'en' locales (settings.FORMAT_MODULE_PATH): ISO 8601 dates everywhere,
in pages, the admin and its date inputs, instead of the locale's "Dec. 4, 2026"."""

DATE_FORMAT = "Y-m-d"
SHORT_DATE_FORMAT = "Y-m-d"
DATETIME_FORMAT = "Y-m-d H:i"
SHORT_DATETIME_FORMAT = "Y-m-d H:i"
TIME_FORMAT = "H:i"
YEAR_MONTH_FORMAT = "Y-m"
# A day of the admin's date drill-down.
MONTH_DAY_FORMAT = "Y-m-d"
# The first is what the admin's calendar writes into a date input.
DATE_INPUT_FORMATS = ["%Y-%m-%d"]
DATETIME_INPUT_FORMATS = ["%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M:%S.%f", "%Y-%m-%d %H:%M"]
