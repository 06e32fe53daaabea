"""Digests of advertisement sets: an unchanged gossip exchange carries 64 characters, not the set.

The digest of a set is the SHA-256 (64 lowercase hex) of its canonical form: the JSON array of
`[registerId, name, description, latestVersion, latestDocketVersion, isFullReplica]` rows sorted
by registerId, serialised without whitespace in UTF-8 with RFC 8785's string escapes (`"`, `\\`
and control characters only; orjson writes exactly that). Both ends compute it from what they
hold: the sender from its local public advertisements, the receiver from the remote ones it
keeps for that peer, so a digest-only message can only refresh a set the receiver still has.

Re-digesting an unchanged set costs one pass over its entries: a set is recomputed only when
the store's encoded entries differ from the ones it was last computed from (compared exactly,
never by a hash that could collide).
"""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Generic, TypeVar

import orjson

from peers.store import Entry

DIGEST_PATTERN = r"^[0-9a-f]{64}$"

Row = tuple[str, str, str, int, int, bool]
T = TypeVar("T")


def row(register_id: str, fields: Mapping[str, Any]) -> Row:
    return (
        register_id,
        fields["name"],
        fields["description"],
        fields["latestVersion"],
        fields["latestDocketVersion"],
        fields["isFullReplica"],
    )


def digest_of_rows(rows: Iterable[Row]) -> str:
    return hashlib.sha256(orjson.dumps(sorted(rows))).hexdigest()


def digest_of_entries(entries: Iterable[Entry]) -> str:
    return digest_of_rows(row(entry.register_id, entry.fields) for entry in entries)


class EntryCache(Generic[T]):
    """Something derived from a set of store entries, per key, rebuilt only when an entry changed.

    Bounded: past `max_keys` keys the cache starts again (keys are peer ids, themselves bounded
    by GOSSIP_MAX_PEERS; the bound only matters against churn).
    """

    def __init__(self, max_keys: int) -> None:
        self._max_keys = max_keys
        self._cached: dict[str, tuple[tuple[tuple[str, str], ...], T]] = {}
        self._lock = threading.Lock()

    def get(self, key: str, entries: Sequence[Entry], build: Callable[[], T]) -> T:
        fingerprint = tuple((entry.register_id, entry.value) for entry in entries)
        with self._lock:
            cached = self._cached.get(key)
        if cached is not None and cached[0] == fingerprint:
            return cached[1]
        value = build()
        with self._lock:
            if key not in self._cached and len(self._cached) >= self._max_keys:
                self._cached.clear()
            self._cached[key] = (fingerprint, value)
        return value

    def clear(self) -> None:
        with self._lock:
            self._cached.clear()
