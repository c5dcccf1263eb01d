"""Django settings for cobrador, read from the environment (see the README's configuration table)."""

import os
from datetime import timedelta
from pathlib import Path

import dj_database_url

from cobrador.core.keys import (
    check_fernet_key,
    load_or_create_key,
    prepare_data_dir,
    prepare_subdir,
    require_writable_dir,
)
from cobrador.core.logs import logging_setting
from cobrador.jobs.catalog import ox_schedules
from cobrador.notifications.email_config import mailers_setting

# A missing or unwritable data directory, an unreadable key file or a malformed key is a ConfigurationError:
# one line naming the directory or the variable (cobrador prints it instead of a traceback).
DATA_DIR = prepare_data_dir(Path(os.environ.get("COBRADOR_DATA_DIR", ".cobrador")).resolve())

SECRET_KEY = os.environ.get("COBRADOR_SECRET_KEY") or load_or_create_key(
    DATA_DIR / "secret_key", "django", variable="COBRADOR_SECRET_KEY")
# Fernet key for provider credentials, webhook secrets and other values encrypted at rest.
ENCRYPTION_KEY = check_fernet_key(
    os.environ.get("COBRADOR_ENCRYPTION_KEY") or load_or_create_key(
        DATA_DIR / "encryption_key", "fernet", variable="COBRADOR_ENCRYPTION_KEY"),
    source="COBRADOR_ENCRYPTION_KEY" if os.environ.get("COBRADOR_ENCRYPTION_KEY") else
    f"the key in {DATA_DIR / 'encryption_key'}")

DEBUG = os.environ.get("COBRADOR_DEBUG") == "1"
ALLOWED_HOSTS = [h for h in os.environ.get("COBRADOR_ALLOWED_HOSTS", "*").split(",") if h]
CSRF_TRUSTED_ORIGINS = [o for o in os.environ.get("COBRADOR_CSRF_TRUSTED_ORIGINS", "").split(",") if o]
PUBLIC_URL = os.environ.get("COBRADOR_PUBLIC_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    # Before the admin: its templates override the admin's (ops/templates/admin/base_site.html).
    "cobrador.ops",
    # The admin with the operator's console as its site (ops/console.py).
    "cobrador.ops.apps.ConsoleAdminConfig",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_ox",
    "ninja",
    "axes",
    "cobrador.core",
    "cobrador.organizations",
    "cobrador.jobs",
    "cobrador.events",
    "cobrador.webhooks",
    "cobrador.customers",
    "cobrador.catalog",
    "cobrador.subscriptions",
    "cobrador.invoicing",
    "cobrador.gateways",
    "cobrador.payments",
    "cobrador.callbacks",
    "cobrador.notifications",
    "cobrador.dunning",
    "cobrador.nfe",
    "cobrador.proposals",
    "cobrador.usage",
    "cobrador.domains",
    "cobrador.pages",
    "cobrador.dashboard",
]

MIDDLEWARE = [
    # First: every request's log lines carry its request id, and its answer is counted for /metrics.
    "cobrador.ops.middleware.RequestContextMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "cobrador.core.http_errors.JsonHttpErrorsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # A request for an organization's custom domain reaches only its hosted pages (domains/middleware.py).
    "cobrador.domains.middleware.CustomDomainMiddleware",
    # Before anything reads a /v1 body: its size, media type and NUL characters (core/middleware.py).
    "cobrador.core.middleware.ApiBodyChecksMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "cobrador.organizations.idempotency.IdempotencyKeyMiddleware",
    # Last, as django-axes asks: turns a locked-out login into its 429 answer.
    "axes.middleware.AxesMiddleware",
]

# Admin login brute force (django-axes): after COBRADOR_ADMIN_LOGIN_FAILURE_LIMIT wrong passwords for one
# user name, or from one address, further attempts are refused (429, even with the right password) until
# the cool-off passes or an operator runs `cobrador manage axes_reset` (or axes_reset_username / _ip).
# Each failure and each lock-out is logged at WARNING by the `axes` logger.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = int(os.environ.get("COBRADOR_ADMIN_LOGIN_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = timedelta(minutes=float(os.environ.get("COBRADOR_ADMIN_LOGIN_COOLOFF_MINUTES", "15")))
# Either one locks: a user name tried from many addresses, and an address trying many user names.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
# Log which user name and address failed (axes masks them by default); passwords are never logged.
AXES_SENSITIVE_PARAMETERS = []

ROOT_URLCONF = "cobrador.urls"
WSGI_APPLICATION = "cobrador.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
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

SQLITE_PATH = DATA_DIR / "cobrador.sqlite3"
DATABASE_URL = os.environ.get("COBRADOR_DATABASE_URL") or f"sqlite:///{SQLITE_PATH}"


def database_from_url(url: str) -> dict:
    # Connections are kept between requests (opening a PostgreSQL connection cost a quarter of a callback
    # request); health checks replace one that died meanwhile.
    config = dj_database_url.parse(url, conn_max_age=int(os.environ.get("COBRADOR_DB_CONN_MAX_AGE", "300")))
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # Django's backend, waiting for the write lock at BEGIN in a short retry loop (core/sqlite3/base.py).
        config["ENGINE"] = "cobrador.core.sqlite3"
        config["OPTIONS"] = {
            # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue on the busy
            # timeout instead of failing with "database is locked" when they upgrade a read lock.
            "transaction_mode": "IMMEDIATE",
            "timeout": 30,
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;",
        }
        config["TEST"] = {"NAME": str(DATA_DIR / "test.sqlite3")}
    else:
        config.setdefault("OPTIONS", {})
        # The planner's default (4) prices a random read as from a spinning disk: batches of 500 rows
        # joined to large tables then hash-joined whole tables (20 ms) instead of probing indexes (2 ms).
        random_page_cost = os.environ.get("COBRADOR_PG_RANDOM_PAGE_COST", "1.1")
        if random_page_cost:
            config["OPTIONS"]["options"] = f"-c random_page_cost={float(random_page_cost)}"
    config["CONN_HEALTH_CHECKS"] = True
    return config


DATABASES = {"default": database_from_url(DATABASE_URL)}
_sqlite_name = str(DATABASES["default"]["NAME"]) if DATABASES["default"]["ENGINE"].endswith("sqlite3") else ""
if _sqlite_name and _sqlite_name != ":memory:" and not _sqlite_name.startswith("file:"):
    # SQLite writes its journal files beside the database, so its directory must be writable.
    require_writable_dir(Path(_sqlite_name).resolve().parent, needed_for="the SQLite database")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

TASKS = {
    "default": {
        "BACKEND": "django_ox.backend.OxBackend",
        "QUEUES": [],
        "OPTIONS": {
            "MAX_ATTEMPTS": 5,
            "LOCK_TIMEOUT": int(os.environ.get("COBRADOR_TASK_LOCK_TIMEOUT", "120")),
            "BACKOFF_INITIAL": 5,
            "BACKOFF_MAX": 600,
            "SCHEDULES": ox_schedules(),
            # Passes SIGTERM on to the sweeps and delivery loops (core/stopping.py).
            "WORKER_CLASS": "cobrador.jobs.worker.StoppableWorker",
        },
    }
}

# A running JobRun writes a heartbeat this often; one whose heartbeat is older than JOB_ABANDONED_AFTER
# seconds belongs to a process that died and is marked `abandoned` (jobs/runner.py).
JOB_HEARTBEAT_SECONDS = float(os.environ.get("COBRADOR_JOB_HEARTBEAT_SECONDS", "10"))
JOB_ABANDONED_AFTER = float(os.environ.get("COBRADOR_JOB_ABANDONED_AFTER", str(6 * JOB_HEARTBEAT_SECONDS)))
# Operators told (one e-mail per incident, one when it recovers) when a job is late or stuck (jobs/health.py).
OPS_EMAIL = [a.strip() for a in os.environ.get("COBRADOR_OPS_EMAIL", "").split(",") if a.strip()]

LANGUAGE_CODE = "en"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = prepare_subdir(DATA_DIR / "static", needed_for="the admin's static files")
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True

# Webhooks: targets on loopback/private networks are refused unless this is set (tests, local dev).
WEBHOOK_ALLOW_PRIVATE = os.environ.get("COBRADOR_WEBHOOK_ALLOW_PRIVATE") == "1"
# A whole webhook request (connect, send, status, the first 1 KB of the answer) ends within this.
WEBHOOK_TIMEOUT_SECONDS = float(os.environ.get("COBRADOR_WEBHOOK_TIMEOUT", "15"))
WEBHOOK_CONCURRENCY = int(os.environ.get("COBRADOR_WEBHOOK_CONCURRENCY", "16"))
# How long a claimed delivery belongs to one worker before another may take it over.
OUTBOX_LEASE_SECONDS = float(os.environ.get("COBRADOR_OUTBOX_LEASE_SECONDS", "60"))
# How often an idle worker on SQLite checks for a commit that may have written outbox rows (core.outbox).
OUTBOX_POLL_SECONDS = float(os.environ.get("COBRADOR_OUTBOX_POLL_SECONDS", "0.1"))

# NFe.io's API (NFS-e). An installation setting, never an API field: the tests point it at their fake.
NFEIO_BASE_URL = os.environ.get("COBRADOR_NFEIO_BASE_URL", "https://api.nfe.io").rstrip("/")
NFEIO_TIMEOUT = float(os.environ.get("COBRADOR_NFEIO_TIMEOUT", "30"))

TIME_TRAVEL = os.environ.get("COBRADOR_TIME_TRAVEL") == "1"

# Payment providers: each adapter knows its production and sandbox hosts. These point them elsewhere (the
# tests' fakes, a provider's staging host); they are installation settings, never tenant input.
PAGARME_BASE_URL = os.environ.get("COBRADOR_PAGARME_BASE_URL", "").strip()
PAGARME_JWKS_URL = os.environ.get("COBRADOR_PAGARME_JWKS_URL", "").strip()
KOBANA_BASE_URL = os.environ.get("COBRADOR_KOBANA_BASE_URL", "").strip()
# Provider calls go through the same resolve-pin-refuse guard as webhooks: loopback and private
# addresses are refused unless this is set (tests, local development against fakes).
PROVIDER_ALLOW_PRIVATE = os.environ.get("COBRADOR_PROVIDER_ALLOW_PRIVATE") == "1"

# E-mail: SMTP from COBRADOR_EMAIL_URL (smtp://user:pass@host:port?tls=1), else one .eml file per mail in
# DATA_DIR/mails (see cobrador/notifications/email_config.py).
MAIL_DIR = DATA_DIR / "mails"
MAILERS = mailers_setting(os.environ.get("COBRADOR_EMAIL_URL", "").strip(), MAIL_DIR)
DEFAULT_FROM_EMAIL = os.environ.get("COBRADOR_EMAIL_FROM", "cobrador@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# Subscriptions: days before a prompt-mode term ends that subscription.renewal_prompted goes out.
RENEWAL_PROMPT_DAYS = int(os.environ.get("COBRADOR_RENEWAL_PROMPT_DAYS", "15"))
# Invoices fall due this many days after their period starts (or after issue, if issued later).
INVOICE_DUE_DAYS = int(os.environ.get("COBRADOR_INVOICE_DUE_DAYS", "0"))

RETENTION_DAYS = {
    "webhook_deliveries": int(os.environ.get("COBRADOR_RETENTION_WEBHOOK_DAYS", "30")),
    "job_runs": int(os.environ.get("COBRADOR_RETENTION_JOBRUN_DAYS", "90")),
    "tasks": int(os.environ.get("COBRADOR_RETENTION_TASK_DAYS", "7")),
    "events": int(os.environ.get("COBRADOR_RETENTION_EVENT_DAYS", "90")),
    "callbacks": int(os.environ.get("COBRADOR_RETENTION_CALLBACK_DAYS", "90")),
    # Long enough that no sweep looks back past it: a pruned notice's dedupe key can no longer block a resend.
    "notices": int(os.environ.get("COBRADOR_RETENTION_NOTICE_DAYS", "180")),
}

NINJA_PAGINATION_MAX_LIMIT = 100

# COBRADOR_LOG_FORMAT=json: one JSON object a line with the request id, organization, job and run id.
LOGGING = logging_setting(
    log_format=os.environ.get("COBRADOR_LOG_FORMAT", "text").strip().lower() or "text",
    level=os.environ.get("COBRADOR_LOG_LEVEL", "INFO"),
    ox_level=os.environ.get("COBRADOR_OX_LOG_LEVEL", "WARNING"),
)

# /metrics answers a request bearing this token (Authorization: Bearer ...); unset, only loopback clients.
METRICS_TOKEN = os.environ.get("COBRADOR_METRICS_TOKEN", "")

# Custom domains (domains/): the name customers CNAME their host to, and the addresses an apex name's A/AAAA
# records must point at (an apex cannot have a CNAME).
CUSTOM_DOMAIN_TARGET = os.environ.get("COBRADOR_CUSTOM_DOMAIN_TARGET", "domains.cobrador.localhost").strip().rstrip(".")
CUSTOM_DOMAIN_ADDRESSES = [a.strip() for a in os.environ.get("COBRADOR_CUSTOM_DOMAIN_ADDRESSES", "").split(",")
                           if a.strip()]
# Resolvers the DNS checks ask ("host" or "host:port", comma-separated); empty: the system's resolv.conf.
DNS_NAMESERVERS = [a.strip() for a in os.environ.get("COBRADOR_DNS_NAMESERVERS", "").split(",") if a.strip()]
DNS_TIMEOUT = float(os.environ.get("COBRADOR_DNS_TIMEOUT", "5"))
# The ACME directory (Let's Encrypt by default; staging: https://acme-staging-v02.api.letsencrypt.org/directory).
ACME_DIRECTORY = os.environ.get("COBRADOR_ACME_DIRECTORY",
                                "https://acme-v02.api.letsencrypt.org/directory").strip()
# A CA bundle (PEM file) to verify the ACME server with, instead of the system's (a test CA such as pebble).
ACME_CA_BUNDLE = os.environ.get("COBRADOR_ACME_CA_BUNDLE", "").strip()
ACME_CONTACT_EMAIL = os.environ.get("COBRADOR_ACME_EMAIL", "").strip()
# The CA's CAA identities: a CAA `issue` record naming none of them forbids issuance.
ACME_CAA_IDENTITIES = [a.strip() for a in os.environ.get("COBRADOR_ACME_CAA_IDENTITIES", "letsencrypt.org")
                       .split(",") if a.strip()]
# How many ACME orders run at once in one custom-domain-ssl run.
ACME_CONCURRENCY = int(os.environ.get("COBRADOR_ACME_CONCURRENCY", "8"))
# Where each active certificate is published for the TLS server (nginx): <host>.fullchain.pem, <host>.key.pem.
CERT_DIR = Path(os.environ.get("COBRADOR_CERT_DIR", str(DATA_DIR / "certs"))).resolve()
