"""Settings for GPU Procurement Tracker.

Everything comes from environment variables. With none set, the app runs on the embedded
default: a SQLite file under var/, Celery tasks executed in-process, email written to files
in var/mail/. Production sets DATABASE_URL, CELERY_BROKER_URL, EMAIL_URL, SECRET_KEY and the
security variables (see .env.example); `manage.py check --deploy --fail-level WARNING` passes
only when they are set, and the production image refuses to start otherwise.
"""

from datetime import timedelta
from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = BASE_DIR / "var"

env = environ.Env()

# --- Core ------------------------------------------------------------------------------------
DEBUG = env.bool("DEBUG", default=False)
# The default key is only good for a laptop: `check --deploy` flags the "django-insecure-"
# prefix (security.W009), and the production entrypoint runs that check with --fail-level.
SECRET_KEY = env.str("SECRET_KEY", default="django-insecure-local-development-only-key-0123456789")
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["127.0.0.1", "localhost"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
# Absolute base URL of every link the app prints or mails (scripts/run.sh sets it to the port
# it serves on).
SITE_URL = env.str("SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.humanize",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "axes",
    "simple_history",
    "orders",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "orders.middleware.RejectNulInQueryStringMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Audit trail (orders.history): changes made in a request are recorded as request.user's.
    "simple_history.middleware.HistoryRequestMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, as django-axes asks: turns a locked-out login attempt into its lockout page.
    "axes.middleware.AxesMiddleware",
]

# Every change goes through orders.services / orders.quotas (locks, limits, status, checks);
# a revert would write an old row back directly, past all of them, and would edit
# append-only quotes. The history is read-only: orders.admin_history refuses the form's POST.
SIMPLE_HISTORY_REVERT_DISABLED = True

ROOT_URLCONF = "procurement.urls"
WSGI_APPLICATION = "procurement.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- Database --------------------------------------------------------------------------------
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'db.sqlite3'}"),
}
DATABASES["default"]["ATOMIC_REQUESTS"] = True
if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    # PostgreSQL's JIT compiles a plan for each big aggregate (the scorecards, the lead-time
    # charts): for a page's query that is hundreds of milliseconds spent compiling what runs
    # once. Off unless DATABASE_JIT=true.
    if not env.bool("DATABASE_JIT", default=False):
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["options"] = f"{options.get('options', '')} -c jit=off".strip()
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Auth ------------------------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
# The dashboard's own login page (templates/registration/login.html); logging out, from the
# dashboard or the admin, lands back on it.
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "orders:dashboard"
LOGOUT_REDIRECT_URL = "login"
# django-axes first: it refuses a locked-out login before the password is checked.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# --- Roles (orders/roles.py, orders/permissions.py) ---------------------------------------------
# Buyers edit their own and watched orders only. True: they see every other order read-only
# (the dashboard's "All buyers", a vendor's other orders), as before roles existed and as a
# team sharing one scarce supply needs; false: they see only their own and watched ones.
BUYERS_SEE_ALL_ORDERS = env.bool("BUYERS_SEE_ALL_ORDERS", default=True)

# --- Login brute-force protection (django-axes) ---------------------------------------------
# After AXES_FAILURE_LIMIT failed logins for one username from one client address, that pair
# is locked out for AXES_COOLOFF_MINUTES (answer 429), on the dashboard's login page and the
# admin's alike. By username *and* address: a mistyping colleague behind the same NAT is not
# locked out, nor can an attacker lock a user out from elsewhere.
AXES_FAILURE_LIMIT = env.int("AXES_FAILURE_LIMIT", default=5)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("AXES_COOLOFF_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_CLIENT_IP_CALLABLE = "procurement.security.client_ip"
# Reverse proxies in front of the app that append the client's address to X-Forwarded-For
# (docker-compose.yml: the TLS proxy, 1). 0: the app is reached directly, REMOTE_ADDR it is.
TRUSTED_PROXY_COUNT = env.int("TRUSTED_PROXY_COUNT", default=0)

# --- Time and locale -------------------------------------------------------------------------
LANGUAGE_CODE = "en-us"
# "Today" for every business rule is the date in this zone (orders.dates.today()).
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
# Dates read YYYY-MM-DD everywhere, the admin included: procurement/formats/en/ overrides the
# locale's formats (Django takes DATE_FORMAT and friends from the locale, not from settings).
FORMAT_MODULE_PATH = ["procurement.formats"]

# --- Static files ----------------------------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=VAR_DIR / "static")
# The project's CSS and scripts, and Chart.js vendored (static/vendor/): no CDN, so the pages
# work with no internet access.
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}
# Tests and runserver without collectstatic still find admin assets.
WHITENOISE_USE_FINDERS = DEBUG
WHITENOISE_MANIFEST_STRICT = False

# --- Email -----------------------------------------------------------------------------------
# filemail:// (default: one file per message in EMAIL_FILE_PATH, to read at leisure),
# consolemail:// (print), smtp://user:pass@host:port, smtp+tls://..., smtp+ssl://...
vars().update(env.email_url("EMAIL_URL", default="filemail://"))
# Set apart: django-environ cannot carry an absolute directory in a filemail:// URL.
EMAIL_FILE_PATH = str(env.path("EMAIL_FILE_PATH", default=VAR_DIR / "mail"))
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=10)
DEFAULT_FROM_EMAIL = env.str(
    "DEFAULT_FROM_EMAIL", default="GPU Procurement <procurement@localhost>"
)
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Celery ----------------------------------------------------------------------------------
# No broker configured means the embedded default: tasks run in-process, synchronously.
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default="")
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=not CELERY_BROKER_URL)
# Eager tasks never reach a broker, but Celery still takes a producer for each: an in-memory
# one, named in full so kombu does not warn that it supplies the host.
CELERY_BROKER_URL = CELERY_BROKER_URL or "memory://localhost/"
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_TASK_IGNORE_RESULT = True
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TIMEZONE = TIME_ZONE
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=240)
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=300)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redis holds each task a worker took, unacknowledged, until the task ends (acks_late). If the
# worker dies without handing it back (SIGKILL, OOM kill, lost host), Redis delivers it again
# once it has been out this many seconds. It must exceed the longest run (the time limit) and
# the longest retry countdown (send_alert_email: 600 s), or a task still running or waiting
# for its retry is delivered a second time; the price is that long a wait after a hard crash.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CELERY_BROKER_VISIBILITY_TIMEOUT", default=3600),
}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"

# --- Slip rules and alerts -------------------------------------------------------------------
SLIP_LEAD_TIME_FACTOR = env.float("SLIP_LEAD_TIME_FACTOR", default=3.0)
SLIP_LEAD_TIME_LIMIT_DAYS = env.int("SLIP_LEAD_TIME_LIMIT_DAYS", default=90)
SLIP_WATCHED_MONTHS = env.list("SLIP_WATCHED_MONTHS", cast=int, default=[12])
# An alert nobody acknowledged is sent again every this many days, to the buyer and managers.
SLIP_ESCALATE_DAYS = env.int("SLIP_ESCALATE_DAYS", default=7)
PROCUREMENT_MANAGERS = env.list("PROCUREMENT_MANAGERS", default=[])
SLIP_SCAN_BATCH_SIZE = env.int("SLIP_SCAN_BATCH_SIZE", default=2000)
# Batches scanned at once, each on its own database connection (PostgreSQL only): one batch's
# SQL runs while another's rules are evaluated. About the number of CPU cores.
SLIP_SCAN_WORKERS = env.int("SLIP_SCAN_WORKERS", default=2)
# A digest lists at most this many orders per section, worst first, and counts the rest with a
# link to the admin (after an outage a buyer can have thousands of new alerts).
DIGEST_MAX_ORDERS = env.int("DIGEST_MAX_ORDERS", default=50)
# --- Prices ----------------------------------------------------------------------------------
# price_rise: the latest price of a GPU model from a vendor is this many percent over the lowest
# price from that vendor in the window of days before it.
PRICE_RISE_THRESHOLD_PERCENT = env.float("PRICE_RISE_THRESHOLD_PERCENT", default=20.0)
PRICE_RISE_WINDOW_DAYS = env.int("PRICE_RISE_WINDOW_DAYS", default=180)
# Totals across currencies are shown in this one, where an exchange rate allows.
REPORTING_CURRENCY = env.str("REPORTING_CURRENCY", default="USD")
# A digest still "sending" after this long belonged to a worker that died: try it again.
OUTBOX_STALE_SENDING_MINUTES = env.int("OUTBOX_STALE_SENDING_MINUTES", default=15)

# --- CSV imports -----------------------------------------------------------------------------
# Largest file an import reads (bytes), in the admin and the management commands alike; the
# admin's upload is kept in the session between the preview and the confirmation. The handler
# drops a larger upload as it streams in, before it is stored in memory or on disk
# (orders/uploads.py); a command stops reading at the limit.
IMPORT_MAX_BYTES = env.int("IMPORT_MAX_BYTES", default=10 * 1024 * 1024)
# Most data rows an import reads. The import checks every row before it writes any, so it
# holds the rows it read: this bounds its memory (orders/imports.py).
IMPORT_MAX_ROWS = env.int("IMPORT_MAX_ROWS", default=100_000)
FILE_UPLOAD_HANDLERS = [
    "orders.uploads.SizeLimitUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
# Django's defaults, stated because they bound what a request may hold in memory: an upload
# over 2.5 MB goes to a temporary file; the other fields of a form (everything but files)
# may total 2.5 MB, and at most 1,000 of them, else the request is a 400.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000

# --- Security (production turns these on through the environment) -----------------------------
SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=False)
SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=False)
CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=False)
SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", default=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=False)
SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)
if env.bool("SECURE_PROXY_SSL_HEADER", default=False):
    # Behind a TLS-terminating proxy that sets X-Forwarded-Proto.
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = True  # no script of ours reads it: forms carry the token
SESSION_COOKIE_SAMESITE = CSRF_COOKIE_SAMESITE = "Lax"
# A session lasts a working day from login (Django's default is two weeks).
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=12 * 60 * 60)
# Over HTTPS the cookies get the __Host- prefix: the browser then refuses them unless
# Secure, for this host only and for every path, so a sibling subdomain cannot plant one.
if SESSION_COOKIE_SECURE:
    SESSION_COOKIE_NAME = "__Host-sessionid"
if CSRF_COOKIE_SECURE:
    CSRF_COOKIE_NAME = "__Host-csrftoken"
X_FRAME_OPTIONS = "DENY"

# --- Logging ---------------------------------------------------------------------------------
LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        # runserver's request log, in this format and level rather than Django's own.
        "django.server": {"handlers": ["console"], "level": LOG_LEVEL, "propagate": False},
        # Bots probing the IP with foreign Host headers get a 400; their tracebacks are noise.
        "django.security.DisallowedHost": {"level": "CRITICAL", "propagate": True},
    },
}
