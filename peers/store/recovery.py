"""Surviving Redis outages: the circuit breaker, the bounded journal and the write-back.

After the first Redis error the breaker opens: the store serves and accepts writes from
memory and journals them. On recovery the journal is replayed with the TTL each write has
left, and every live entry, tombstone and the full-sync state this process holds is written
back, each write conditional on its stamp, so that whatever Redis came back with (nothing, an
older dump, another process's newer state) the processes converge and nothing removed returns.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping

import orjson

from peers.store.model import SWEPT, Entry, FullSyncState, Tombstone
from peers.store.redis_io import TTL_INDEX, Keys, Ops, writes_in

logger = logging.getLogger(__name__)


class Breaker:
    """Open after a Redis error: no request waits out a socket timeout per call."""

    def __init__(self, cooldown: float) -> None:
        self.cooldown = cooldown
        self.degraded_since: float | None = None
        self.open_until = 0.0
        self.last_error = ""

    @property
    def open(self) -> bool:
        return self.degraded_since is not None

    def trip(self, exc: Exception) -> bool:
        """Record a failure; True when this one opened the breaker."""
        first = self.degraded_since is None
        if first:
            self.degraded_since = time.time()
        self.last_error = repr(exc)
        self.open_until = time.monotonic() + self.cooldown
        return first

    def may_probe(self) -> bool:
        return time.monotonic() >= self.open_until

    def close(self) -> float:
        """Close it; how long it was open, in seconds."""
        since, self.degraded_since = self.degraded_since, None
        return time.time() - since if since is not None else 0.0


class Journal:
    """Writes not yet in Redis, in order, bounded by count and by age.

    Each batch is kept with the moment it was journaled, so a replay gives every write only
    the TTL it has left (an entry that expired during the outage is not brought back). The
    count is of writes: an operation carrying a bulk's upserts counts each of them. What the
    bounds drop is counted; the write-back of the live mirror still covers the entries.
    """

    def __init__(self, max_ops: int, max_age: float) -> None:
        self.max_ops = max_ops
        self.max_age = max_age
        self._batches: deque[tuple[float, list[list[str]]]] = deque()
        self._ops = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self._ops

    def append(self, ops: list[list[str]]) -> None:
        self._batches.append((time.monotonic(), ops))
        self._ops += writes_in(ops)
        self._trim()

    def _trim(self) -> None:
        horizon = time.monotonic() - self.max_age
        while self._batches and (self._ops > self.max_ops or self._batches[0][0] < horizon):
            _, ops = self._batches.popleft()
            writes = writes_in(ops)
            self._ops -= writes
            self.dropped += writes
            logger.warning("event=store_journal_dropped ops=%d dropped_total=%d", writes, self.dropped)

    def take(self) -> list[tuple[float, list[list[str]]]]:
        self._trim()
        batches, self._batches, self._ops = list(self._batches), deque(), 0
        return batches

    def put_back(self, batches: list[tuple[float, list[list[str]]]]) -> None:
        """A replay that failed: the batches go back in front, in order."""
        self._batches.extendleft(reversed(batches))
        self._ops += sum(writes_in(ops) for _, ops in batches)


def aged(batch: tuple[float, list[list[str]]]) -> bytes | None:
    """The batch with each TTL shortened by its time in the journal; None when nothing is left."""
    journaled_at, ops = batch
    spent_ms = int((time.monotonic() - journaled_at) * 1000)
    kept: list[list[str]] = []
    for op in ops:
        index = TTL_INDEX.get(op[0])
        if index is None or spent_ms == 0:
            kept.append(op)
            continue
        left = int(op[index]) - spent_ms
        if left > 0:
            kept.append([*op[:index], str(left), *op[index + 1 :]])
        elif op[0] == "D":  # the removal still applies; its tombstone has lapsed
            kept.append([op[0], op[1], op[2], "", "1", *op[5:]])
    return orjson.dumps(kept) if kept else None


def set_args(
    keys: Keys, entry: Entry, ttl: float, log: bool = True, floor: int = -1, unlisted_by: str = ""
) -> list[str]:
    """The arguments of an upsert (S), all strings already."""
    if entry.peer_id is None:
        key, tomb = keys.local(entry.register_id), keys.tomb(entry.register_id)
    else:
        key, tomb = keys.remote(entry.peer_id, entry.register_id), keys.peer_tomb(entry.peer_id)
    ttl_ms = max(1, int(ttl * 1000))
    return [
        "S",
        key,
        str(entry.source_updated_at),
        entry.value,
        str(ttl_ms),
        tomb,
        "1" if log else "0",
        str(floor),
        unlisted_by,
    ]


def write_back_ops(
    keys: Keys,
    local: Mapping[str, Entry],
    remote: Mapping[str, Mapping[str, Entry]],
    tombstones: Mapping[str, Tombstone],
    peer_tombstones: Mapping[str, Tombstone],
    full_sync: FullSyncState,
    bookkeeping_ttl_ms: int,
    now: float,
) -> Ops:
    """Every live thing this process holds, each with its remaining TTL, each write conditional.

    The full-sync state goes first: a sweep's tombstone written back after it yields to any newer
    full sync recorded (this process's or another's), and the local entries this process holds
    survived its last full sync, so sweeps older than that one do not refuse them. A local entry
    Redis lacks that is older than a newer full sync recorded there (one this process never saw)
    was not listed by that sync, and is not written back.
    """
    ops = Ops()
    if full_sync.last_applied_at is not None:
        ops.add(["M", keys.meta, full_sync.last_snapshot_at, full_sync.encode(), bookkeeping_ttl_ms, "0"])
    for register_id, tomb in tombstones.items():
        if tomb.expires_at > now:
            ttl_ms = max(1, int((tomb.expires_at - now) * 1000))
            ops.add(
                [
                    "D",
                    keys.local(register_id),
                    tomb.source_updated_at,
                    keys.tomb(register_id),
                    ttl_ms,
                    tomb.kind,
                    keys.meta if tomb.kind == SWEPT else "",
                ]
            )
    for peer_id, tomb in peer_tombstones.items():
        if tomb.expires_at > now:
            ttl_ms = max(1, int((tomb.expires_at - now) * 1000))
            ops.add(["D", "", tomb.source_updated_at, keys.peer_tomb(peer_id), ttl_ms, tomb.kind])
    floor = full_sync.last_snapshot_at if full_sync.last_applied_at is not None else -1
    for entry in local.values():
        if entry.expires_at > now:
            ops.add(set_args(keys, entry, entry.expires_at - now, floor=floor, unlisted_by=keys.meta))
    for entries in remote.values():
        for entry in entries.values():
            if entry.expires_at > now:
                ops.add(set_args(keys, entry, entry.expires_at - now))
    return ops
