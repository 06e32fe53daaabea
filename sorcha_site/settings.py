"""Settings for a Sorcha node, read from the environment (and `.env` if present).

Every variable is optional in development. A malformed value raises
`ImproperlyConfigured` naming the variable, so a node never starts half-configured.
Every variable is read here, through the readers of `sorcha_site/env.py`; `redis_settings`
builds the Redis caches and the broker's options from them, `api_settings` holds the API's.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured
from kombu import Exchange, Queue

from sorcha_site import api_settings, redis_settings

# Private names: the public names of this module are its settings (and the checks that every variable is
# validated and documented look for these names).
from sorcha_site.env import env
from sorcha_site.env import host_ports as _host_ports
from sorcha_site.env import non_negative_int as _non_negative_int
from sorcha_site.env import positive_int as _positive_int
from sorcha_site.env import read as _read
from sorcha_site.env import seconds as _seconds
from sorcha_site.env import url as _url
from sorcha_site.local_address import local_url, parse_port
from tasks.schedule import beat_schedule

BASE_DIR = Path(__file__).resolve().parent.parent

# --- which service this process is -------------------------------------------------------------
SORCHA_SERVICE = str(_read("SORCHA_SERVICE", str, "all")).strip().lower()
if SORCHA_SERVICE not in {"all", "register", "peer"}:
    raise ImproperlyConfigured(f"SORCHA_SERVICE must be one of all, register, peer; got {SORCHA_SERVICE!r}")
SERVES_REGISTERS = SORCHA_SERVICE in {"all", "register"}
SERVES_PEERS = SORCHA_SERVICE in {"all", "peer"}

# --- Django core --------------------------------------------------------------------------------
DEBUG = _read("DEBUG", bool, False)
SECRET_KEY = _read("SECRET_KEY", str, "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is off (make run writes one into .env)")
    SECRET_KEY = "development-only-secret-key-not-for-production"  # noqa: S105
ALLOWED_HOSTS = _read("ALLOWED_HOSTS", list, ["127.0.0.1", "localhost", "[::1]"] if not DEBUG else ["*"])

# --- deployment behind HTTPS (all off by default: `make run` serves plain HTTP on 127.0.0.1) ----------
# Redirect plain HTTP to HTTPS...
SECURE_SSL_REDIRECT = _read("SECURE_SSL_REDIRECT", bool, False)
# ...except the health endpoints, which load balancers and compose healthchecks call over plain HTTP.
SECURE_REDIRECT_EXEMPT = [r"^healthz/?$", r"^readyz/?$"]
# Strict-Transport-Security max-age (0: no header); with it, optionally subdomains and preload.
SECURE_HSTS_SECONDS = _non_negative_int("SECURE_HSTS_SECONDS", 0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = _read("SECURE_HSTS_INCLUDE_SUBDOMAINS", bool, False)
SECURE_HSTS_PRELOAD = _read("SECURE_HSTS_PRELOAD", bool, False)
# Session and CSRF cookies only over HTTPS.
SESSION_COOKIE_SECURE = _read("SESSION_COOKIE_SECURE", bool, False)
CSRF_COOKIE_SECURE = _read("CSRF_COOKIE_SECURE", bool, False)
# Behind a TLS-terminating proxy: `HTTP_X_FORWARDED_PROTO,https` trusts that header to mean HTTPS.
_proxy_ssl_header = [part.strip() for part in _read("SECURE_PROXY_SSL_HEADER", list, [])]
if _proxy_ssl_header and (len(_proxy_ssl_header) != 2 or not _proxy_ssl_header[0].startswith("HTTP_")):
    raise ImproperlyConfigured(
        f"SECURE_PROXY_SSL_HEADER must be HEADER,value such as HTTP_X_FORWARDED_PROTO,https; got {_proxy_ssl_header!r}"
    )
SECURE_PROXY_SSL_HEADER = (_proxy_ssl_header[0], _proxy_ssl_header[1]) if _proxy_ssl_header else None
# Origins (scheme://host[:port]) whose unsafe requests the admin accepts, e.g. https://node.example.org.
CSRF_TRUSTED_ORIGINS = [origin.strip() for origin in _read("CSRF_TRUSTED_ORIGINS", list, []) if origin.strip()]
for _origin in CSRF_TRUSTED_ORIGINS:
    if urlparse(_origin).scheme not in ("http", "https") or not urlparse(_origin).netloc:
        raise ImproperlyConfigured(f"CSRF_TRUSTED_ORIGINS must be comma-separated http(s) origins, got {_origin!r}")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "registers",
    "peers",
    "tasks",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "sorcha_site.middleware.BodySizeLimitMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "sorcha_site.urls"
WSGI_APPLICATION = "sorcha_site.wsgi.application"

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

_var_dir = BASE_DIR / "var"
try:
    DATABASES = {"default": env.db_url("DATABASE_URL", default=f"sqlite:///{_var_dir / 'sorcha.sqlite3'}")}
except (ValueError, ImproperlyConfigured) as exc:
    raise ImproperlyConfigured(f"DATABASE_URL is malformed: {exc}") from exc
# The two databases this node is tested on (SQLite embedded, PostgreSQL in production and CI).
if DATABASES["default"]["ENGINE"] not in ("django.db.backends.sqlite3", "django.db.backends.postgresql"):
    raise ImproperlyConfigured(
        f"DATABASE_URL must be a sqlite:/// or postgres:// URL, got scheme {urlparse(env.str('DATABASE_URL')).scheme!r}"
    )
if DATABASES["default"]["ENGINE"].endswith("sqlite3"):
    # Several processes (web, worker, beat) share the file: wait for locks instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {}).update(
        {
            "timeout": 20,
            # A deferred transaction that reads then writes cannot wait for another writer: SQLite
            # answers "database is locked" at once. Taking the write lock up front makes it wait.
            "transaction_mode": "IMMEDIATE",
            # WAL: readers (web processes, the admin) never block the writer, nor it them.
            "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        }
    )
    # A file (not in-memory) test database, so worker subprocesses started by tests can share it.
    DATABASES["default"]["TEST"] = {"NAME": f"{DATABASES['default']['NAME']}.test"}
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "staticfiles"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
# With DEBUG off whitenoise serves the admin's files straight from the apps (no collectstatic step).
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

# --- bodies and bounds ----------------------------------------------------------------------------
SORCHA_MAX_BODY_BYTES = _positive_int("SORCHA_MAX_BODY_BYTES", 32 * 1024 * 1024)
SORCHA_BULK_MAX_ITEMS = _positive_int("SORCHA_BULK_MAX_ITEMS", 10_000)
# Registers per page of a full sync by digest (`POST /api/registers/reconcile`): ~50 bytes each.
SORCHA_DIGEST_MAX_ITEMS = _positive_int("SORCHA_DIGEST_MAX_ITEMS", 100_000)
# The largest `?limit=` of a paginated list (the Register API's); above it the request gets 400.
SORCHA_LIST_LIMIT_MAX = _positive_int("SORCHA_LIST_LIMIT_MAX", 1_000)
DATA_UPLOAD_MAX_MEMORY_SIZE = SORCHA_MAX_BODY_BYTES

# --- Redis and the advertisement store --------------------------------------------------------------
REDIS_URL = _url("REDIS_URL", "redis://127.0.0.1:6379/0", ("redis", "rediss", "unix"))
REDIS_KEY_PREFIX = str(_read("REDIS_KEY_PREFIX", str, "sorcha")).strip()
if not REDIS_KEY_PREFIX or any(c.isspace() for c in REDIS_KEY_PREFIX):
    raise ImproperlyConfigured(f"REDIS_KEY_PREFIX must be a non-empty word, got {REDIS_KEY_PREFIX!r}")
# How long the store stops calling Redis after an error before it probes again (circuit breaker).
STORE_BREAKER_COOLDOWN = _seconds("STORE_BREAKER_COOLDOWN", 1.0)
STORE_SOCKET_TIMEOUT = _seconds("STORE_SOCKET_TIMEOUT", 0.5)
# While Redis is down the store journals its writes; the journal keeps at most this many
# operations, none older than this (default: one ADVERTISEMENT_TTL, when every write has lapsed).
STORE_JOURNAL_MAX_OPS = _positive_int("STORE_JOURNAL_MAX_OPS", 200_000)

# Redis Sentinel (high availability): the sentinels to ask, and the name of the service they watch.
# REDIS_URL then gives only the database number (and password), its host is replaced by the service.
REDIS_SENTINELS = _host_ports("REDIS_SENTINELS")
REDIS_SENTINEL_SERVICE = str(_read("REDIS_SENTINEL_SERVICE", str, "")).strip()
if bool(REDIS_SENTINELS) != bool(REDIS_SENTINEL_SERVICE):
    raise ImproperlyConfigured("REDIS_SENTINELS and REDIS_SENTINEL_SERVICE must be set together (or neither)")

# One alias per use of Redis (the store, coordination, metrics, the cache): sorcha_site/redis_settings.py.
CACHES = redis_settings.caches(
    REDIS_URL, REDIS_KEY_PREFIX, REDIS_SENTINELS, REDIS_SENTINEL_SERVICE, socket_timeout=STORE_SOCKET_TIMEOUT
)
if REDIS_SENTINELS:
    # As django-redis documents it; each alias also names the factory in its OPTIONS.
    DJANGO_REDIS_CONNECTION_FACTORY = "django_redis.pool.SentinelConnectionFactory"
DJANGO_REDIS_LOG_IGNORED_EXCEPTIONS = True

# --- advertisement timing -------------------------------------------------------------------------
ADVERTISEMENT_TTL = _seconds("ADVERTISEMENT_TTL", 300.0)
RECONCILE_INTERVAL = _seconds("RECONCILE_INTERVAL", 150.0)
GOSSIP_INTERVAL = _seconds("GOSSIP_INTERVAL", 150.0)
RESYNC_BACKOFF_MAX = _seconds("RESYNC_BACKOFF_MAX", 30.0)
# A full sync's snapshotAt is taken this long before the Register Service reads its database,
# so a register whose transaction was still open during the read (its updated_at already set)
# counts as changed after the snapshot and is never swept. At least the longest transaction.
# How often the beat looks for changes that waited in the outbox longer than their flush should take
# (a flush lost with the broker or a failed-over Redis): it schedules one at once.
PUSH_CHECK_INTERVAL = _seconds("PUSH_CHECK_INTERVAL", 5.0)
FULL_SYNC_SNAPSHOT_MARGIN = _seconds("FULL_SYNC_SNAPSHOT_MARGIN", min(30.0, RECONCILE_INTERVAL / 5))
if FULL_SYNC_SNAPSHOT_MARGIN >= RECONCILE_INTERVAL:
    raise ImproperlyConfigured(
        f"FULL_SYNC_SNAPSHOT_MARGIN ({FULL_SYNC_SNAPSHOT_MARGIN:g}s) must be shorter than RECONCILE_INTERVAL "
        f"({RECONCILE_INTERVAL:g}s)"
    )
# How far ahead of this node's clock a client's timestamp may lie (snapshotAt, sourceUpdatedAt, sentAt).
CLOCK_SKEW_MAX = _seconds("CLOCK_SKEW_MAX", 300.0)
if 2 * max(RECONCILE_INTERVAL, GOSSIP_INTERVAL) > ADVERTISEMENT_TTL:
    raise ImproperlyConfigured(
        f"ADVERTISEMENT_TTL ({ADVERTISEMENT_TTL:g}s) must be at least twice the longest refresh interval "
        f"(RECONCILE_INTERVAL={RECONCILE_INTERVAL:g}s, GOSSIP_INTERVAL={GOSSIP_INTERVAL:g}s): an advertisement "
        "whose TTL equals its refresh interval lapses whenever one refresh is late or fails."
    )

STORE_JOURNAL_MAX_AGE = _seconds("STORE_JOURNAL_MAX_AGE", ADVERTISEMENT_TTL)
# Full-sync runs the Register Service keeps for the admin's Sync Status tab and
# GET /api/registers/sync-history (the oldest beyond it are deleted as each run is recorded).
SYNC_HISTORY_MAX = _positive_int("SYNC_HISTORY_MAX", 500)

# --- service-to-service ---------------------------------------------------------------------------


def _own_url() -> str:
    """Where this node serves (HOST and PORT, as `make run` passes them), reached from the node itself."""
    try:
        port = parse_port(str(_read("PORT", str, "8000")))
    except ValueError as exc:
        raise ImproperlyConfigured(f"PORT is malformed: {exc}") from exc
    return local_url(str(_read("HOST", str, "127.0.0.1")), port)


# Unless set (in the environment, or in .env, read into it above), the Peer Service is this node's own:
# make run serves both services on HOST:PORT. PORT is read only then, as platforms and process managers
# set it for purposes of their own too.
_peer_service_url_default = "" if "PEER_SERVICE_URL" in os.environ else _own_url()
PEER_SERVICE_URL = _url("PEER_SERVICE_URL", _peer_service_url_default, ("http", "https")).rstrip("/")
SORCHA_SERVICE_TOKEN = str(_read("SORCHA_SERVICE_TOKEN", str, ""))
if not SORCHA_SERVICE_TOKEN and not DEBUG:
    raise ImproperlyConfigured("SORCHA_SERVICE_TOKEN is required when DEBUG is off (make run writes one into .env)")
if SORCHA_SERVICE_TOKEN and len(SORCHA_SERVICE_TOKEN) < 16:
    raise ImproperlyConfigured("SORCHA_SERVICE_TOKEN must be at least 16 characters long")
PEER_SERVICE_CONNECT_TIMEOUT = _seconds("PEER_SERVICE_CONNECT_TIMEOUT", 3.0)
PEER_SERVICE_READ_TIMEOUT = _seconds("PEER_SERVICE_READ_TIMEOUT", 60.0)
# Register changes made within this window travel to the Peer Service together, in one bulk request.
PUSH_COALESCE_WINDOW = _seconds("PUSH_COALESCE_WINDOW", 0.2)

NODE_NAME = str(_read("NODE_NAME", str, "sorcha-node"))
PEER_PUBLIC_URL = str(_read("PEER_PUBLIC_URL", str, PEER_SERVICE_URL)).rstrip("/")
PEER_SEEDS = [seed.strip().rstrip("/") for seed in _read("PEER_SEEDS", list, []) if seed.strip()]
for _seed in PEER_SEEDS:
    if urlparse(_seed).scheme not in ("http", "https") or not urlparse(_seed).hostname:
        raise ImproperlyConfigured(f"PEER_SEEDS must be comma-separated http(s) URLs, got {_seed!r}")
# Gossip: bounds and backoff of exchanges with other nodes.
GOSSIP_MAX_BODY_BYTES = _positive_int("GOSSIP_MAX_BODY_BYTES", 16 * 1024 * 1024)
GOSSIP_BACKOFF_BASE = _seconds("GOSSIP_BACKOFF_BASE", 5.0)
GOSSIP_BACKOFF_MAX = _seconds("GOSSIP_BACKOFF_MAX", 600.0)
GOSSIP_CONNECT_TIMEOUT = _seconds("GOSSIP_CONNECT_TIMEOUT", 3.0)
# After a local change, wait this long before the triggered round so a burst of changes shares one.
GOSSIP_TRIGGER_DELAY = _seconds("GOSSIP_TRIGGER_DELAY", 0.25)
# Admission and bounds (ARCHITECTURE §4): the exchange is open to anyone who signs, so it is bounded.
PEER_ADMISSION = str(_read("PEER_ADMISSION", str, "open")).strip().lower()
if PEER_ADMISSION not in {"open", "allowlist"}:
    raise ImproperlyConfigured(f"PEER_ADMISSION must be open or allowlist, got {PEER_ADMISSION!r}")
PEER_ALLOWLIST = [peer_id.strip() for peer_id in _read("PEER_ALLOWLIST", list, []) if peer_id.strip()]
for _peer_id in PEER_ALLOWLIST:
    if len(_peer_id) != 32 or any(c not in "0123456789abcdef" for c in _peer_id):
        raise ImproperlyConfigured(f"PEER_ALLOWLIST must be comma-separated peer ids (32 hex), got {_peer_id!r}")
# Peer rows in all (seeds, learnt URLs and senders); a new sender over the cap is refused.
GOSSIP_MAX_PEERS = _positive_int("GOSSIP_MAX_PEERS", 200)
# Remote advertisements held in all (every web and worker process mirrors them in memory).
GOSSIP_MAX_REMOTE_ADS = _positive_int("GOSSIP_MAX_REMOTE_ADS", 100_000)
# Exchanges accepted per window from one source address and from one peer id (429 beyond).
GOSSIP_RATE_WINDOW = _seconds("GOSSIP_RATE_WINDOW", 60.0, minimum=0.999)
GOSSIP_RATE_PER_ADDRESS = _positive_int("GOSSIP_RATE_PER_ADDRESS", 120)
GOSSIP_RATE_PER_PEER = _positive_int("GOSSIP_RATE_PER_PEER", 30)
# Relayed gossip (ARCHITECTURE §4, "Remote advertisement"; docs/configuration.md says what each does).
GOSSIP_RELAY, GOSSIP_DISCOVERY = _read("GOSSIP_RELAY", bool, True), _read("GOSSIP_DISCOVERY", bool, True)
GOSSIP_FANOUT, GOSSIP_MAX_ORIGINS = _positive_int("GOSSIP_FANOUT", 3), _positive_int("GOSSIP_MAX_ORIGINS", 1_000)
GOSSIP_RATE_SETS_PER_PEER = _positive_int("GOSSIP_RATE_SETS_PER_PEER", 5 * GOSSIP_MAX_ORIGINS)
GOSSIP_RATE_BUMPS_PER_ORIGIN = _positive_int("GOSSIP_RATE_BUMPS_PER_ORIGIN", 30)
GOSSIP_SET_BUDGET_BYTES = _positive_int("GOSSIP_SET_BUDGET_BYTES", 1024 * 1024)
# Outbound: loopback and private addresses only when asked (development, closed networks);
# link-local (cloud metadata), multicast and unspecified never. Seeds are always allowed.
GOSSIP_ALLOW_PRIVATE = _read("GOSSIP_ALLOW_PRIVATE", bool, False)
# One exchange (connect, send, read the reply) ends within this, whatever the peer does.
GOSSIP_EXCHANGE_DEADLINE = _seconds("GOSSIP_EXCHANGE_DEADLINE", 10.0)
# Peers contacted at once in a round.
GOSSIP_ROUND_WORKERS = _positive_int("GOSSIP_ROUND_WORKERS", 16)

# --- REST framework and API docs --------------------------------------------------------------------
# Authentication, parsers, pagination, the schema and its docs UI: sorcha_site/api_settings.py.
REST_FRAMEWORK = api_settings.REST_FRAMEWORK
SPECTACULAR_SETTINGS = api_settings.SPECTACULAR_SETTINGS
# /api/schema/ and /api/docs/ need the API's credentials unless this is on.
API_DOCS_PUBLIC = _read("API_DOCS_PUBLIC", bool, False)

# --- metrics -----------------------------------------------------------------------------------------
# /metrics needs the API's credentials unless this is on (a scraper on a trusted network).
METRICS_PUBLIC = _read("METRICS_PUBLIC", bool, False)

# --- logging ----------------------------------------------------------------------------------------
LOG_LEVEL = str(_read("LOG_LEVEL", str, "INFO")).upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"keyvalue": {"format": "ts=%(asctime)s level=%(levelname)s logger=%(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "keyvalue"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django": {"handlers": ["console"], "level": "INFO", "propagate": False}},
}

# --- Celery: workers push advertisements, beat schedules reconciliation -----------------------------
# Where tasks are queued (its own Redis database, apart from the advertisement store's). An explicit
# CELERY_BROKER_URL wins; otherwise, with REDIS_SENTINELS set, the broker is the Sentinel service too, in the
# database after REDIS_URL's.
# An empty CELERY_BROKER_URL counts as unset (a compose override cannot remove a variable, only empty it).
if REDIS_SENTINELS and not os.environ.get("CELERY_BROKER_URL", "").strip():
    CELERY_BROKER_URL = redis_settings.sentinel_broker_url(REDIS_URL, REDIS_SENTINELS)
else:
    CELERY_BROKER_URL = _url("CELERY_BROKER_URL", "redis://127.0.0.1:6379/1", ("redis", "rediss", "unix", "sentinel"))
# Publishing while the broker is down must fail within seconds (a register save logs the push as deferred).
CELERY_BROKER_CONNECTION_TIMEOUT = 2.0
# Workers started before the broker wait for it instead of exiting.
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# Redelivery after a worker died, and the bounds on a lost or silent broker (and its sentinels).
CELERY_BROKER_TRANSPORT_OPTIONS = redis_settings.broker_transport_options(CELERY_BROKER_URL, REDIS_SENTINEL_SERVICE)
# A retried publish (e.g. of a task's own retry) tries briefly, then fails loudly.
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
# JSON only: no pickle, so a message on the broker can never execute code.
CELERY_TASK_SERIALIZER = "json"
# (Results are not stored, but if one ever is, it is JSON too.)
CELERY_RESULT_SERIALIZER = "json"
# Workers refuse any message that is not JSON.
CELERY_ACCEPT_CONTENT = ["json"]
# No result backend: tasks record their outcome themselves (AdvertisementSyncState, logs).
CELERY_RESULT_BACKEND = None
# Nothing waits on a task's return value.
CELERY_TASK_IGNORE_RESULT = True
# Beat and ETAs (retry times) in the project's zone, UTC.
CELERY_TIMEZONE = TIME_ZONE
# Message timestamps in UTC.
CELERY_ENABLE_UTC = True
# A task is acknowledged after it ran, so a worker killed mid-task leaves it queued (every task is idempotent).
CELERY_TASK_ACKS_LATE = True
# ...but a task whose worker process crashed is not requeued, so a task that crashes a worker cannot loop.
CELERY_TASK_REJECT_ON_WORKER_LOST = False
# On a lost broker connection, running late-ack tasks are cancelled; they are redelivered and redone.
CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS = True
# One task reserved at a time per process: a long full sync does not hold pushes hostage.
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# A task is told to stop after 5 minutes (a push is one request bounded by the Peer timeouts; a full sync a few).
CELERY_TASK_SOFT_TIME_LIMIT = 300
# ...and its process is killed a minute later if it did not.
CELERY_TASK_TIME_LIMIT = 360
# Keep the node's key=value log format in workers and beat (Django's LOGGING owns the root logger).
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Queues carry the key prefix, so nodes sharing one Redis (demo, tests) never run each other's tasks.
CELERY_TASK_DEFAULT_QUEUE = f"{REDIS_KEY_PREFIX}.default"
# Register Service tasks (`registers.*`) and Peer Service tasks (`peers.*`) each have their own queue.
CELERY_TASK_ROUTES = {
    "registers.*": {"queue": f"{REDIS_KEY_PREFIX}.registers"},
    "peers.*": {"queue": f"{REDIS_KEY_PREFIX}.peers"},
}
# A worker consumes the queues of the services this process is (SORCHA_SERVICE).
CELERY_TASK_QUEUES = [
    Queue(name, Exchange(name), routing_key=name)
    for name, wanted in (
        (CELERY_TASK_DEFAULT_QUEUE, True),
        (f"{REDIS_KEY_PREFIX}.registers", SERVES_REGISTERS),
        (f"{REDIS_KEY_PREFIX}.peers", SERVES_PEERS),
    )
    if wanted
]
# Periodic tasks: the reconciliation full sync every RECONCILE_INTERVAL (tasks/schedule.py).
CELERY_BEAT_SCHEDULE = beat_schedule(
    serves_registers=SERVES_REGISTERS,
    reconcile_interval=RECONCILE_INTERVAL,
    serves_peers=SERVES_PEERS,
    gossip_interval=GOSSIP_INTERVAL,
    push_check_interval=PUSH_CHECK_INTERVAL,
)
# Beat's state file, under var/ with the other runtime files.
CELERY_BEAT_SCHEDULE_FILENAME = str(_var_dir / "celerybeat-schedule")
