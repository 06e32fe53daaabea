"""Every Redis connection of every process of a node comes from here.

Each purpose has a django-redis alias in `settings.CACHES`, so one setting moves all of them: with
`REDIS_SENTINELS` set, every alias is a Sentinel client that asks the sentinels for the current primary
whenever it connects, and treats a `READONLY` answer (a primary demoted to a replica) as a lost
connection (redis-py's `SentinelManagedConnection`). The Celery broker follows Sentinel through kombu's
own `sentinel://` transport (`settings.CELERY_BROKER_URL`).

`tests/test_redis_connections.py` fails if a Redis client is built anywhere else in the node's code.
"""

from __future__ import annotations

import redis
from django_redis import get_redis_connection
from redis.backoff import NoBackoff
from redis.retry import Retry

# The advertisement store (peers/store): no retries, its circuit breaker decides.
STORE = "advertisements"
# Pending pushes, full-sync leases, the startup claim, the Redis lineage mark.
COORDINATION = "coordination"
# The node's metric counters: a lost count never slows the request that counts it.
METRICS = "metrics"


def connection(alias: str) -> redis.Redis:
    """The shared client of one alias (thread-safe; its pool reconnects by itself)."""
    client: redis.Redis = get_redis_connection(alias)
    return client


def client_for_url(url: str, *, socket_timeout: float) -> redis.Redis:
    """A store's client for an explicit Redis URL (a store built for one server: tests, benchmarks)."""
    return redis.Redis.from_url(
        url,
        socket_timeout=socket_timeout,
        socket_connect_timeout=socket_timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=0,
    )
