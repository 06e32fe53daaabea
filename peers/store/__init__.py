"""The Peer Service's advertisement store (ARCHITECTURE §5).

| module       | holds                                                               | knows Redis |
|--------------|---------------------------------------------------------------------|-------------|
| `model`      | inputs, entries, tombstones, results, full-sync state, time          | no          |
| `decide`     | the rules of §4 as planners: (what is held, an input, now) -> plans  | no          |
| `mirror`     | the pool in this process's memory, changed only from Redis's state   | no          |
| `follow`     | what a process does with the change log it reads (apply, reload…)    | no          |
| `render`     | the available list's rows: aggregation, the majority vote, the order | no          |
| `encoded`    | the list encoded once per version of the mirror                      | no          |
| `tails`      | rows' `verified`/`lastSeen` written anew in the encoded list          | no          |
| `redis_io`   | keys, the scripts, batches of operations, the change log             | yes         |
| `plan`       | a plan's data (operations, expected states, clock) and its counting  | no          |
| `commit`     | the one commit path, following the log, loading, recovering          | yes         |
| `recovery`   | circuit breaker, bounded journal, write-back                         | no          |
| `full_sync`  | a full sync's marks, sweep and record                                 | yes         |
| `watcher`    | the thread that follows the log between requests, and recovers       | yes         |
| `store`      | `AdvertisementStore`: the lock and the public API                    | yes         |

`docs/design.md` tells how one write travels through them.

Callers import only from this package: the store, `get_store()`, and the model's names.
"""

from __future__ import annotations

import threading

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
from peers.store.redis_io import PoolRead
from peers.store.store import AdvertisementStore

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
    "read_at_start",
    "reset_store",
    "to_micros",
]

# The django-redis alias whose connection carries the store (settings.CACHES).
CONNECTION_ALIAS = "advertisements"
_store: AdvertisementStore | None = None
_store_lock = threading.Lock()
# The start-up read `read_at_start()` began, until `get_store()` builds the store from it.
_read: PoolRead | None = None


def _connection() -> object | None:
    """The store's Redis client from django-redis, when the alias is configured."""
    from django.conf import settings

    if CONNECTION_ALIAS not in getattr(settings, "CACHES", {}):
        return None
    from sorcha_site import redis_connections

    return redis_connections.connection(CONNECTION_ALIAS)


def read_at_start() -> None:
    """Start reading the persisted pool now, for the store `get_store()` builds later in this process.

    Needs only the settings (not the app registry): a web process calls it before Django sets up,
    so Redis reads the pool on its own core while this process imports (SC-002).
    """
    global _read
    with _store_lock:
        client = _connection() if _store is None and _read is None else None
        if client is not None:
            from django.conf import settings

            _read = AdvertisementStore.read_at_start(
                client,  # type: ignore[arg-type]
                settings.REDIS_KEY_PREFIX,
                settings.ADVERTISEMENT_TTL,
            )


def get_store() -> AdvertisementStore:
    """This process's store, built from settings on first use (from the read `read_at_start` began)."""
    global _store, _read
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
                    read_at_start=_read,
                )
                _read = None
    return _store


def reset_store() -> None:
    """Drop this process's store (tests that change settings or restart Redis)."""
    global _store, _read
    with _store_lock:
        if _store is not None:
            _store.close()
        _store, _read = None, None
