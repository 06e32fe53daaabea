"""CACHES, as the settings build it from REDIS_URL, REDIS_SENTINELS and REDIS_SENTINEL_SERVICE."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.helpers import wait_until
from tests.redis_server import RedisServer, free_port
from tests.settings.helpers import manage

# Every django-redis alias: the one place (sorcha_site.redis_connections) hands out their connections.
REDIS_ALIASES = ("default", "advertisements", "coordination", "metrics")


def caches(**changes: str | None) -> dict[str, Any]:
    code = (
        "import json; from django.conf import settings; "
        "print(json.dumps({'CACHES': settings.CACHES, "
        "'FACTORY': getattr(settings, 'DJANGO_REDIS_CONNECTION_FACTORY', None), "
        "'BROKER': settings.CELERY_BROKER_URL, 'BROKER_OPTIONS': settings.CELERY_BROKER_TRANSPORT_OPTIONS}, "
        "default=repr))"
    )
    result = manage("shell", "--verbosity", "0", "-c", code, **changes)
    assert result.returncode == 0, result.stderr
    return dict(json.loads(result.stdout))


def test_without_sentinels_every_alias_connects_to_redis_url() -> None:
    built = caches(REDIS_URL="redis://redis.internal:6380/4", REDIS_KEY_PREFIX="node-a", STORE_SOCKET_TIMEOUT="0.7")

    default = built["CACHES"]["default"]
    for alias in REDIS_ALIASES:
        assert built["CACHES"][alias]["LOCATION"] == "redis://redis.internal:6380/4", alias
    assert default["KEY_PREFIX"] == "node-a:cache"
    assert default["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert built["FACTORY"] is None
    assert "CLIENT_CLASS" not in default["OPTIONS"]


def test_the_advertisements_alias_has_the_store_timeouts_and_lets_errors_through() -> None:
    advertisements = caches(STORE_SOCKET_TIMEOUT="0.7")["CACHES"]["advertisements"]

    assert advertisements["BACKEND"] == "django_redis.cache.RedisCache"
    assert advertisements["OPTIONS"]["SOCKET_TIMEOUT"] == advertisements["OPTIONS"]["SOCKET_CONNECT_TIMEOUT"] == 0.7
    # The store's circuit breaker needs to see Redis errors: django-redis must not swallow them.
    assert "IGNORE_EXCEPTIONS" not in advertisements["OPTIONS"]
    # The store prefixes its keys itself (REDIS_KEY_PREFIX).
    assert "KEY_PREFIX" not in advertisements
    # And redis-py does not retry behind the breaker's back: one failure opens it.
    assert "Retry" in advertisements["OPTIONS"]["CONNECTION_POOL_KWARGS"]["retry"]
    # Replies are read a mebibyte at a time (a start-up page is read on a thread while Django imports).
    assert advertisements["OPTIONS"]["CONNECTION_POOL_KWARGS"]["socket_read_size"] == 1 << 20


def test_with_sentinels_every_alias_asks_the_sentinels_for_the_service() -> None:
    built = caches(
        REDIS_URL="redis://:s3cret@ignored-host:6379/2",
        REDIS_SENTINELS="sentinel-1:26379, sentinel-2:26380,[fd00::3]:26381",
        REDIS_SENTINEL_SERVICE="sorcha-primary",
        STORE_SOCKET_TIMEOUT="0.7",
    )

    assert built["FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
    for alias in REDIS_ALIASES:
        cache = built["CACHES"][alias]
        # The service name stands where the host was; database and password come from REDIS_URL.
        assert cache["LOCATION"] == "redis://:s3cret@sorcha-primary/2", alias
        options = cache["OPTIONS"]
        assert options["CLIENT_CLASS"] == "django_redis.client.SentinelClient"
        assert options["CONNECTION_FACTORY"] == "django_redis.pool.SentinelConnectionFactory"
        assert options["CONNECTION_POOL_CLASS"] == "redis.sentinel.SentinelConnectionPool"
        assert options["SENTINELS"] == [["sentinel-1", 26379], ["sentinel-2", 26380], ["fd00::3", 26381]]
        # The coordination keys wait longer (a lease taken a little late is better than none).
        assert options["SOCKET_TIMEOUT"] == (2.0 if alias == "coordination" else 0.7), alias
    assert built["CACHES"]["default"]["OPTIONS"]["IGNORE_EXCEPTIONS"] is True
    assert "IGNORE_EXCEPTIONS" not in built["CACHES"]["advertisements"]["OPTIONS"]


def test_with_sentinels_and_no_broker_url_the_broker_is_the_sentinel_service_in_the_next_database() -> None:
    built = caches(
        REDIS_URL="redis://:s3cret@ignored-host:6379/2",
        REDIS_SENTINELS="sentinel-1:26379,sentinel-2:26380",
        REDIS_SENTINEL_SERVICE="sorcha-primary",
        CELERY_BROKER_URL=None,
    )

    assert built["BROKER"] == "sentinel://:s3cret@sentinel-1:26379/3;sentinel://:s3cret@sentinel-2:26380/3"
    assert built["BROKER_OPTIONS"]["master_name"] == "sorcha-primary"


def test_an_empty_broker_url_counts_as_unset() -> None:
    # A compose override cannot remove a variable the base file sets, only empty it.
    built = caches(REDIS_SENTINELS="sentinel-1:26379", REDIS_SENTINEL_SERVICE="sorcha-primary", CELERY_BROKER_URL="")

    assert built["BROKER"] == "sentinel://sentinel-1:26379/1"
    assert built["BROKER_OPTIONS"]["master_name"] == "sorcha-primary"


def test_an_explicit_broker_url_wins_over_the_sentinels() -> None:
    built = caches(
        REDIS_SENTINELS="sentinel-1:26379",
        REDIS_SENTINEL_SERVICE="sorcha-primary",
        CELERY_BROKER_URL="redis://broker.internal:6379/5",
    )

    assert built["BROKER"] == "redis://broker.internal:6379/5"
    assert "master_name" not in built["BROKER_OPTIONS"]


def test_without_sentinels_the_broker_is_celery_broker_url() -> None:
    built = caches(CELERY_BROKER_URL=None)

    assert built["BROKER"] == "redis://127.0.0.1:6379/1"
    assert "master_name" not in built["BROKER_OPTIONS"]


def test_through_a_real_sentinel_every_alias_reaches_the_primary(tmp_path: Path) -> None:
    primary = RedisServer()
    primary.start()
    sentinel_port = free_port()
    config = tmp_path / "sentinel.conf"  # sentinel rewrites its config file: a private, writable one
    config.write_text(f"port {sentinel_port}\nbind 127.0.0.1\nsentinel monitor sorcha 127.0.0.1 {primary.port} 1\n")
    sentinel = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_until(lambda: redis.Redis(port=sentinel_port).sentinel_master("sorcha"), timeout=10)
        code = (
            "from django.core.cache import caches; from django_redis import get_redis_connection; "
            "caches['default'].set('greeting', 'hello', 30); "
            "[get_redis_connection(a).set(f'sorcha-test:{a}', b'written') for a in "
            f"{REDIS_ALIASES!r}[1:]]; "
            "print(caches['default'].get('greeting'))"
        )
        result = manage(
            "shell",
            "--verbosity",
            "0",
            "-c",
            code,
            REDIS_URL="redis://127.0.0.1:1/0",  # the host is the service's: never this one
            REDIS_SENTINELS=f"127.0.0.1:{sentinel_port}",
            REDIS_SENTINEL_SERVICE="sorcha",
        )

        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == "hello"
        for alias in REDIS_ALIASES[1:]:
            assert primary.client().get(f"sorcha-test:{alias}") == b"written", alias
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
        primary.stop()
