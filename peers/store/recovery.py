"""Surviving Redis outages: the circuit breaker, the bounded journal and the write-back.

After the first Redis error the breaker opens: the store serves and accepts writes from
memory and journals them. On recovery the journal is replayed (each write with the expiry it
was planned with), and every live entry, tombstone and the full-sync state this process holds is written
back, each write conditional on its stamp, so that whatever Redis came back with (nothing, an
older dump, another process's newer state) the processes converge and nothing removed returns.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Mapping

from peers.store.model import SWEPT, Entry, FullSyncState, Tombstone
from peers.store.redis_io import Keys, Ops, writes_in

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

    Each batch keeps the clock it was planned at: a replay counts every TTL from that moment
    again (`commit.lua` writes with PXAT), so an entry that expired during the outage is not
    brought back. The count is of writes: an operation carrying a bulk's upserts counts each of
    them. What the bounds drop is counted; the write-back of the live mirror still covers the entries.
    """

    def __init__(self, max_ops: int, max_age: float) -> None:
        self.max_ops = max_ops
        self.max_age = max_age
        self._batches: deque[tuple[float, int, list[list[str]]]] = deque()
        self._ops = 0
        self.dropped = 0

    def __len__(self) -> int:
        return self._ops

    def append(self, now_ms: int, ops: list[list[str]]) -> None:
        self._batches.append((time.monotonic(), now_ms, ops))
        self._ops += writes_in(ops)
        self._trim()

    def _trim(self) -> None:
        horizon = time.monotonic() - self.max_age
        while self._batches and (self._ops > self.max_ops or self._batches[0][0] < horizon):
            _, _, ops = self._batches.popleft()
            writes = writes_in(ops)
            self._ops -= writes
            self.dropped += writes
            logger.warning("event=store_journal_dropped ops=%d dropped_total=%d", writes, self.dropped)

    def take(self) -> list[tuple[int, list[list[str]]]]:
        """The batches in order, each with the clock (ms) it was planned at; the journal is emptied."""
        self._trim()
        batches = [(now_ms, ops) for _, now_ms, ops in self._batches]
        self._batches, self._ops = deque(), 0
        return batches

    def put_back(self, batches: list[tuple[int, list[list[str]]]]) -> None:
        """A replay that failed: the batches go back in front, in order."""
        now = time.monotonic()
        self._batches.extendleft((now, now_ms, ops) for now_ms, ops in reversed(batches))
        self._ops += sum(writes_in(ops) for _, ops in batches)


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
    """Every live thing this process holds, each until its own expiry, each write conditional.

    The full-sync state goes first: a sweep's tombstone written back after it yields to any newer
    full sync recorded (this process's or another's), and the local entries this process holds
    survived its last full sync, so sweeps older than that one do not refuse them. A local entry
    Redis lacks that is older than a newer full sync recorded there (one this process never saw)
    was not listed by that sync, and is not written back. TTLs count from `now` (the commit's clock).
    """

    def left_ms(expires_at: float) -> int:
        return max(1, int(expires_at * 1000) - int(now * 1000))

    ops = Ops()
    if full_sync.last_applied_at is not None:
        ops.add(["M", keys.meta, full_sync.last_snapshot_at, full_sync.encode(), bookkeeping_ttl_ms, "0"], "m")
    for register_id, tomb in tombstones.items():
        if tomb.expires_at > now:
            outranked_by = keys.meta if tomb.kind == SWEPT else ""
            local_key, tomb_key = keys.local(register_id), keys.tomb(register_id)
            left = left_ms(tomb.expires_at)
            ops.add(["D", local_key, tomb.source_updated_at, tomb_key, left, tomb.kind, outranked_by], "x")
    for peer_id, tomb in peer_tombstones.items():
        if tomb.expires_at > now:
            ops.add(
                ["D", "", tomb.source_updated_at, keys.peer_tomb(peer_id), left_ms(tomb.expires_at), tomb.kind], "x"
            )
    floor = str(full_sync.last_snapshot_at if full_sync.last_applied_at is not None else -1)
    for entry in local.values():
        if entry.expires_at > now:
            key, tomb_key = keys.local(entry.register_id), keys.tomb(entry.register_id)
            entry_left = str(left_ms(entry.expires_at))
            ops.add(["S", key, str(entry.source_updated_at), entry.value, entry_left, tomb_key, floor, keys.meta], "n")
    for peer_id, entries in remote.items():
        for entry in entries.values():
            if entry.expires_at > now:
                key, value = keys.remote(peer_id, entry.register_id), entry.value
                remaining = str(left_ms(entry.expires_at))
                ops.add(
                    ["S", key, str(entry.source_updated_at), value, remaining, keys.peer_tomb(peer_id), "-1", ""], "n"
                )
    return ops
