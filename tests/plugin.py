"""Loaded with `-p tests.plugin` before Django reads its settings.

It starts the session's own redis-server and points every setting at private
resources, so tests never touch the machine's shared Redis or a developer's `.env`.
"""

from __future__ import annotations

import atexit
import os
import tempfile

from tests.constants import SERVICE_TOKEN
from tests.databases import session_database_url
from tests.redis_server import RedisServer

__all__ = ["SERVICE_TOKEN", "SESSION_REDIS"]

SESSION_REDIS = RedisServer()
SESSION_REDIS.start()
atexit.register(SESSION_REDIS.stop)

_tmp = tempfile.mkdtemp(prefix="sorcha-test-")
os.environ.update(
    {
        "SORCHA_ENV_FILE": os.devnull,
        "DJANGO_SETTINGS_MODULE": "sorcha_site.settings",
        "DEBUG": "false",
        "SECRET_KEY": "test-secret-key-not-for-production",
        "ALLOWED_HOSTS": "*",
        "SORCHA_SERVICE": "all",
        "SORCHA_SERVICE_TOKEN": SERVICE_TOKEN,
        # SORCHA_TEST_DATABASE_URL=postgres://… runs the session on PostgreSQL (tests/databases.py); the
        # developer's own DATABASE_URL is never used, so tests cannot touch a real database by accident.
        "DATABASE_URL": session_database_url(_tmp),
        "REDIS_URL": SESSION_REDIS.url,
        "CELERY_BROKER_URL": SESSION_REDIS.broker_url(),
        "REDIS_KEY_PREFIX": f"sorcha-test-{os.getpid()}",
        "LOG_LEVEL": "WARNING",
        "GOSSIP_ALLOW_PRIVATE": "true",
    }
)


def pytest_unconfigure() -> None:
    SESSION_REDIS.stop()
