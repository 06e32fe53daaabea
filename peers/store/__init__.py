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

import threading

from django.core.cache.backends.base import BaseCache

from peers.store.facade import AdvertisementStore
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
    "reset_store",
    "to_micros",
]

# The django-redis alias whose connection carries the store (settings.CACHES).
CONNECTION_ALIAS = "advertisements"
# The process-local Django cache alias the store keeps its pre-encoded available list in.
RENDERING_ALIAS = "renderings"

_store: AdvertisementStore | None = None
_store_lock = threading.Lock()


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


def get_store() -> AdvertisementStore:
    """This process's store, built from settings on first use."""
    global _store
    if _store is None:
        with _store_lock:
            if _store is None:
                from django.conf import settings

                _store = AdvertisementStore(
                    settings.REDIS_URL,
                    settings.REDIS_KEY_PREFIX,
                    settings.ADVERTISEMENT_TTL,
                    client=_connection(),  # type: ignore[arg-type]
                    breaker_cooldown=settings.STORE_BREAKER_COOLDOWN,
                    socket_timeout=settings.STORE_SOCKET_TIMEOUT,
                    reconcile_interval=settings.RECONCILE_INTERVAL,
                    clock_skew=settings.CLOCK_SKEW_MAX,
                    journal_max_ops=settings.STORE_JOURNAL_MAX_OPS,
                    journal_max_age=settings.STORE_JOURNAL_MAX_AGE,
                    rendering_cache=_rendering_cache(),
                )
    return _store


def reset_store() -> None:
    """Drop this process's store (tests that change settings or restart Redis)."""
    global _store
    with _store_lock:
        if _store is not None:
            _store.close()
        _store = None
