"""The Peer Service's advertisement store (ARCHITECTURE §5).

| module       | holds                                                         | knows Redis |
|--------------|---------------------------------------------------------------|-------------|
| `model`      | inputs, entries, tombstones, results, full-sync state, time    | no          |
| `decide`     | ordering, tombstones, mark-and-sweep, the guard, staleness     | no          |
| `view`       | aggregation and the pre-encoded available list                 | no          |
| `redis_io`   | keys, the scripts, batches of operations                       | yes         |
| `recovery`   | circuit breaker, bounded journal, write-back                   | yes         |
| `facade`     | `AdvertisementStore`: the mirror and the lock, wiring the rest | yes         |

Callers import only from this package: the store, `get_store()`, and the model's names.
"""

from __future__ import annotations

import secrets
import threading
from concurrent.futures import Future

import redis
from django.core.cache.backends.base import BaseCache

from peers.store.facade import AdvertisementStore, bookkeeping_ttl_ms
from peers.store.model import (
    AdvertisementInput,
    BulkResult,
    Entry,
    MarksLost,
    MarksUnavailable,
    StaleFullSync,
    format_micros,
    now_micros,
    to_micros,
)
from peers.store.redis_io import Keys, PoolRead, RedisIO, start_pool_read

__all__ = [
    "AdvertisementInput",
    "AdvertisementStore",
    "BulkResult",
    "Entry",
    "MarksLost",
    "MarksUnavailable",
    "StaleFullSync",
    "format_micros",
    "get_store",
    "now_micros",
    "read_early",
    "reset_store",
    "to_micros",
]

# The django-redis alias whose connection carries the store (settings.CACHES).
CONNECTION_ALIAS = "advertisements"
# The process-local Django cache alias the store keeps its pre-encoded available list in.
RENDERING_ALIAS = "renderings"

_store: AdvertisementStore | None = None
_store_lock = threading.Lock()
_early_read: Future[PoolRead] | None = None


def _connection() -> object | None:
    """The store's Redis client from django-redis, when the alias is configured."""
    from django.conf import settings

    if CONNECTION_ALIAS not in getattr(settings, "CACHES", {}):
        return None
    from django_redis import get_redis_connection

    return get_redis_connection(CONNECTION_ALIAS)


def _rendering_cache() -> BaseCache | None:
    """Django's cache for the pre-encoded available list, when the alias is configured."""
    from django.conf import settings

    if RENDERING_ALIAS not in getattr(settings, "CACHES", {}):
        return None
    from django.core.cache import caches

    return caches[RENDERING_ALIAS]


def _client() -> redis.Redis:
    """The store's client: django-redis's when the alias is configured, else one for REDIS_URL."""
    from django.conf import settings

    connection = _connection()
    if connection is not None:
        return connection  # type: ignore[return-value]
    return AdvertisementStore.client_for(settings.REDIS_URL, settings.STORE_SOCKET_TIMEOUT)


def read_early() -> None:
    """Begin reading the persisted pool from Redis in the background, for `get_store()` to take.

    A web process calls this before Django sets itself up: Redis scans the pool on its own core
    while the interpreter imports (most of a restart over a large pool), and the store takes each
    page as it arrives. Only settings are needed; a failed read is the store's start without Redis.
    """
    global _early_read
    from django.conf import settings

    with _store_lock:
        if _store is None and _early_read is None:
            io = RedisIO(_client(), Keys(settings.REDIS_KEY_PREFIX))
            _early_read = start_pool_read(io, secrets.token_hex(8), bookkeeping_ttl_ms(settings.ADVERTISEMENT_TTL))


def get_store() -> AdvertisementStore:
    """This process's store, built from settings on first use (taking an early read if one began)."""
    global _store, _early_read
    if _store is None:
        with _store_lock:
            if _store is None:
                from django.conf import settings

                _store = AdvertisementStore(
                    settings.REDIS_URL,
                    settings.REDIS_KEY_PREFIX,
                    settings.ADVERTISEMENT_TTL,
                    client=_client(),
                    breaker_cooldown=settings.STORE_BREAKER_COOLDOWN,
                    socket_timeout=settings.STORE_SOCKET_TIMEOUT,
                    reconcile_interval=settings.RECONCILE_INTERVAL,
                    clock_skew=settings.CLOCK_SKEW_MAX,
                    journal_max_ops=settings.STORE_JOURNAL_MAX_OPS,
                    journal_max_age=settings.STORE_JOURNAL_MAX_AGE,
                    rendering_cache=_rendering_cache(),
                    early_read=_early_read,
                )
                _early_read = None
    return _store


def reset_store() -> None:
    """Drop this process's store (tests that change settings or restart Redis)."""
    global _store
    with _store_lock:
        if _store is not None:
            _store.close()
        _store = None
