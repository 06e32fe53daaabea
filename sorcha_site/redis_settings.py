"""Redis, in one place (ARCHITECTURE §3): the django-redis caches every Redis connection of the node
is taken from, and the Celery broker's connection when Redis is behind Sentinel.

Builders only: `sorcha_site/settings.py` reads and validates the variables and passes them in.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlparse

from django.core.exceptions import ImproperlyConfigured
from redis.backoff import NoBackoff
from redis.retry import Retry


def _redis_cache(
    redis_url: str,
    sentinels: list[tuple[str, int]],
    sentinel_service: str,
    socket_timeout: float,
    key_prefix: str | None,
    **options: Any,
) -> dict[str, Any]:
    """A django-redis cache on `redis_url`, or on the Sentinel service when `sentinels` is set."""
    location = redis_url
    options = {"SOCKET_CONNECT_TIMEOUT": socket_timeout, "SOCKET_TIMEOUT": socket_timeout, **options}
    if sentinels:
        parsed = urlparse(redis_url)
        credentials = parsed.netloc.rpartition("@")[0]
        location = parsed._replace(
            scheme="redis", netloc=f"{credentials}@{sentinel_service}" if credentials else sentinel_service
        ).geturl()
        options.update(
            {
                # django-redis's Sentinel client asks the sentinels for the current primary on connect.
                "CLIENT_CLASS": "django_redis.client.SentinelClient",
                "CONNECTION_FACTORY": "django_redis.pool.SentinelConnectionFactory",
                "CONNECTION_POOL_CLASS": "redis.sentinel.SentinelConnectionPool",
                "SENTINELS": sentinels,
                "SENTINEL_KWARGS": {"socket_timeout": socket_timeout, "socket_connect_timeout": socket_timeout},
            }
        )
    cache: dict[str, Any] = {"BACKEND": "django_redis.cache.RedisCache", "LOCATION": location, "OPTIONS": options}
    if key_prefix is not None:
        cache["KEY_PREFIX"] = key_prefix
    return cache


def caches(
    redis_url: str, key_prefix: str, sentinels: list[tuple[str, int]], sentinel_service: str, socket_timeout: float
) -> dict[str, dict[str, Any]]:
    """`CACHES`: one alias per use of Redis, each with the timeouts and retries that use needs."""

    def cache(prefix: str | None, **options: Any) -> dict[str, Any]:
        return _redis_cache(redis_url, sentinels, sentinel_service, socket_timeout, prefix, **options)

    return {
        # The cache is an optimisation only: Redis being down must never fail a request.
        "default": cache(f"{key_prefix}:cache", IGNORE_EXCEPTIONS=True),
        # The advertisement store's connection (django_redis.get_redis_connection("advertisements")): its keys
        # carry REDIS_KEY_PREFIX themselves, and its errors must reach the store's circuit breaker.
        # No retries inside redis-py: one failure opens the store's breaker at once. Replies are read 1 MiB
        # at a time: a start-up page is ~3 MB, read on a thread while the process imports Django, and each
        # read waits for the GIL (up to 5 ms while the importer holds it): 64 KiB reads cost ~0.5 s at 100k.
        "advertisements": cache(
            None, CONNECTION_POOL_KWARGS={"retry": Retry(NoBackoff(), 0), "socket_read_size": 1 << 20}
        ),
        # The Register Service's coordination keys (pending pushes, full-sync leases, the startup claim, the
        # Redis lineage mark): their keys carry REDIS_KEY_PREFIX themselves.
        # A command is tried once more at once on a lost connection (a failover moves it to the new primary).
        "coordination": cache(
            None,
            SOCKET_CONNECT_TIMEOUT=2.0,
            SOCKET_TIMEOUT=2.0,
            CONNECTION_POOL_KWARGS={"retry": Retry(NoBackoff(), 1)},
        ),
        # The node's metric counters (sorcha_site.metrics): the store's short timeouts, so a Redis outage
        # drops a count quickly instead of slowing the request that counts it.
        "metrics": cache(None, CONNECTION_POOL_KWARGS={"retry": Retry(NoBackoff(), 0)}),
    }


def sentinel_broker_url(redis_url: str, sentinels: list[tuple[str, int]]) -> str:
    """The broker as the Sentinel service too (kombu's `sentinel://` transport, which asks the sentinels
    for the primary on every connect), in the database after `redis_url`'s."""
    store_url = urlparse(redis_url)
    broker_db = int((store_url.path or "/0").lstrip("/") or 0) + 1
    password = f":{store_url.password}@" if store_url.password else ""
    return ";".join(f"sentinel://{password}{host}:{port}/{broker_db}" for host, port in sentinels)


def broker_transport_options(broker_url: str, sentinel_service: str) -> dict[str, Any]:
    """`CELERY_BROKER_TRANSPORT_OPTIONS`: a lost or silent broker is noticed within seconds."""
    options: dict[str, Any] = {
        # Redelivery of an unacknowledged task after a worker died; longer than any task plus its retry delay.
        "visibility_timeout": 3600,
        # A connection to an unreachable broker is given up after this long...
        "socket_connect_timeout": 2.0,
        # ...and a broker that stops answering mid-command after this long.
        "socket_timeout": 5.0,
        # Publishing reconnects once, at once, before it gives up (kombu would otherwise sleep 2 s first).
        "max_retries": 1,
        "interval_start": 0,
        # (Kombu's pacing between further reconnects, were max_retries raised.)
        "interval_step": 0.2,
        "interval_max": 0.5,
    }
    if broker_url.startswith("sentinel://"):
        options["master_name"] = sentinel_service
        # The sentinels themselves answer within the same bounds as the primary.
        options["sentinel_kwargs"] = {"socket_timeout": 2.0, "socket_connect_timeout": 2.0}
        if not options["master_name"]:
            raise ImproperlyConfigured(
                "a sentinel:// CELERY_BROKER_URL needs REDIS_SENTINEL_SERVICE (the service's name)"
            )
    return options
