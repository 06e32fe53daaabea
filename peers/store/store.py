"""`AdvertisementStore`: the pool of register advertisements a web process serves and writes.

Every write is the same three steps, under the store's lock:

1. follow the change log, so the mirror is what Redis holds;
2. ask `decide` for plans (pure: the mirror, the input, the time);
3. hand the plans to `Committer.commit`, the one path to Redis, which takes Redis's reply into
   the mirror exactly as every other process takes the log entry.

Reads follow the log first too (one round trip when nothing changed), so a read made after a
write has answered shows it in every process. While Redis is down nothing waits on it: reads
are served from the mirror and writes are journaled (`recovery`). A watcher thread follows the
log between requests and recovers when Redis comes back.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import redis

from peers.store import decide
from peers.store import full_sync as full_syncs
from peers.store.commit import Committer, Prefetch
from peers.store.decide import Clock
from peers.store.encoded import EncodedList
from peers.store.mirror import Mirror
from peers.store.model import (
    AdvertisementInput,
    BulkResult,
    DigestAnswer,
    Entry,
    MarksUnavailable,
    format_micros,
    format_seconds,
    now_micros,
)
from peers.store.recovery import Breaker, Journal
from peers.store.redis_io import Keys, PoolRead, RedisIO
from peers.store.render import aggregate
from peers.store.watcher import Watcher
from sorcha_site import redis_connections

logger = logging.getLogger(__name__)

# Writes one script call carries: an upsert holds Redis ~4 µs, so 1,000 hold it ~4 ms, and the other
# processes' reads wait no longer than that behind it.
COMMIT_BATCH = 1_000
# How often a reader waiting for the store looks whether a bulk write has published the list meanwhile.
_READER_POLL_S = 0.001
# The log and the full-sync state outlive advertisements.
_BOOKKEEPING_TTL_S = 86_400.0


class AdvertisementStore:
    """The unified pool of local and remote advertisements (FR-001, FR-002, FR-010)."""

    def __init__(
        self,
        redis_url: str | None,
        prefix: str,
        ttl: float,
        *,
        client: redis.Redis | None = None,
        breaker_cooldown: float = 1.0,
        socket_timeout: float = 0.5,
        commit_batch: int = COMMIT_BATCH,
        start_watcher: bool = True,
        reconcile_interval: float | None = None,
        clock_skew: float = 300.0,
        journal_max_ops: int = 200_000,
        journal_max_age: float | None = None,
        read_at_start: PoolRead | None = None,
        io: type[RedisIO] = RedisIO,
    ) -> None:
        """`io`: what carries the store's every call to Redis (`RedisIO`, or a subclass of it that a
        test uses to see or fault those calls: the store's seam)."""
        self.prefix = prefix
        self.keys = Keys(prefix)
        self.ttl = float(ttl)
        self.commit_batch = commit_batch
        # A stored last snapshot blocks older ones for at most one reconcile interval.
        self.reconcile_interval = float(reconcile_interval if reconcile_interval is not None else ttl / 2)
        self.clock_skew = float(clock_skew)
        if client is None:
            if redis_url is None:
                raise ValueError("AdvertisementStore needs a redis_url or a client")
            client = redis_connections.client_for_url(redis_url, socket_timeout=socket_timeout)
        self.client = client
        self.bookkeeping_ttl_ms = int(max(_BOOKKEEPING_TTL_S, 10 * self.ttl) * 1000)
        self.mirror = Mirror(self.keys, self.ttl)
        journal = Journal(journal_max_ops, journal_max_age if journal_max_age is not None else self.ttl)
        self.committer = Committer(
            io(client, self.keys), self.mirror, Breaker(breaker_cooldown), journal, self.bookkeeping_ttl_ms
        )
        self._lock = threading.RLock()
        # While a bulk write holds the lock: the rendering of the mirror as the last finished write left it,
        # and the log entry the write began at (one value: a reader never pairs one write's with another's).
        self._before_bulk: tuple[bytes, bytes] | None = None
        self._encoded = EncodedList()
        self._read_once = False  # the list was read: writes encode it for the next readers
        self._load(read_at_start if read_at_start is not None and read_at_start.prefix == prefix else None)
        self._watcher: Watcher | None = None
        if start_watcher:  # (blocking on the log under the socket timeout, at most a cool-down)
            self._watcher = Watcher(self.committer, self.mirror, self._lock, min(breaker_cooldown, socket_timeout / 2))
            self._watcher.start()

    @staticmethod
    def read_at_start(client: redis.Redis, prefix: str, ttl: float) -> PoolRead:
        """Start the read a store for `prefix` loads from (`read_at_start=`) before building it: a web
        process starts it before Django is set up, so Redis reads the pool meanwhile."""
        return RedisIO(client, Keys(prefix)).read_pool()

    def _load(self, read: PoolRead | None) -> None:
        with self._lock:
            try:
                self.committer.reload(read if read is not None else self.committer.io.read_pool(), initial=True)
            except redis.RedisError as exc:
                self.committer.trip(exc)
                logger.warning("event=store_start_without_redis prefix=%s error=%r", self.prefix, exc)
                return
            # Rendered while the process starts, so that its first request is served at once.
            self._encoded.body(self.mirror)

    def local_key(self, register_id: str) -> str:
        return self.keys.local(register_id)

    def tomb_key(self, register_id: str) -> str:
        return self.keys.tomb(register_id)

    @property
    def degraded(self) -> bool:
        return self.committer.breaker.open

    def close(self) -> None:
        if self._watcher is not None:
            self._watcher.stop()
        self.committer.close()
        self.client.close()

    def _follow(self) -> None:
        self.committer.guarded(self.committer.follow)

    @contextmanager
    def _reading(self) -> Iterator[None]:
        """The store held for a read, its mirror caught up with the log as of the read's start: the log
        is read first, without the store, and taken in under it."""
        prefetch = self.committer.prefetch()
        with self._lock:
            self._read(prefetch)
            yield

    def _encode_for_readers(self) -> None:
        """Encode the list now (under the lock, once a change is in), so that readers find it ready
        rather than encode it on their time; not before anyone has read it."""
        if self._read_once:
            self._encoded.body(self.mirror)

    def clock(self) -> Clock:
        """Now, in whole ms (what Redis expiries count in), never earlier than `time.time()`."""
        return Clock(math.ceil(time.time() * 1000) / 1000, max(1, int(self.ttl * 1000)))

    # ------------------------------------------------------------------ local advertisements
    def advertise(self, advertisement: AdvertisementInput) -> tuple[BulkResult, Entry | None]:
        """A single push: `isPublic` true upserts, false removes (never held by the guard)."""
        with self._lock:
            self._follow()
            result = self._apply_items([advertisement], floor=None)
            self._encode_for_readers()
            return result, self.mirror.local.get(advertisement.register_id)

    def remove(self, register_id: str, source_updated_at: int | None = None) -> BulkResult:
        return self.advertise(AdvertisementInput(register_id, False, source_updated_at=source_updated_at))[0]

    def _apply_items(self, advertisements: Sequence[AdvertisementInput], floor: int | None) -> BulkResult:
        """Plan and commit; the caller holds the store and has followed the log."""
        clock, result = self.clock(), BulkResult()
        plans = decide.plan_items(
            self.keys,
            self.mirror.local,
            self.mirror.tombstones,
            advertisements,
            clock,
            result,
            floor=floor,
            batch=self.commit_batch,
            stamp_now=now_micros(),
        )
        self.committer.commit(plans, clock.now_ms, result)
        return result

    def apply_bulk(
        self,
        advertisements: Sequence[AdvertisementInput],
        full_sync: bool = False,
        snapshot_at: int | None = None,
        total: int | None = None,
    ) -> BulkResult:
        """Bulk advertise (FR-005); with `full_sync` the list is the complete local set (FR-011).

        A request carrying `snapshot_at` belongs to a full sync: its items are marked (shared
        with every process through Redis) and, in the last one (`full_sync`), the rest swept.
        Raises StaleFullSync (no sweep), MarksUnavailable and MarksLost (items refreshed, no sweep).
        """
        with self._bulk_write():
            void = False
            if full_sync:
                snapshot_at = snapshot_at if snapshot_at is not None else now_micros()
                void = full_syncs.judge(self, snapshot_at)
            result = self._apply_items(advertisements, floor=snapshot_at)
            if snapshot_at is not None:
                listed = {advertisement.register_id for advertisement in advertisements}
                if full_sync:
                    full_syncs.sweep(self, snapshot_at, listed, result, void, total)
                else:
                    full_syncs.mark(self, snapshot_at, listed, result)
            return result

    def reconcile(
        self, digest: Sequence[tuple[str, int]], snapshot_at: int, final: bool, total: int | None = None
    ) -> DigestAnswer:
        """One page of a full sync by digest: `(registerId, sourceUpdatedAt)` of registers the source lists.

        What is held as stated has its TTL started again in Redis (nothing rewritten) and counts as
        unchanged; the rest is `needed`, for the source to send in full with the same `snapshotAt`.
        A final page that needs nothing completes the full sync here. Raises StaleFullSync,
        MarksUnavailable (Redis unreachable: retry) and MarksLost.
        """
        with self._bulk_write():
            if self.degraded:
                raise MarksUnavailable(snapshot_at)
            return full_syncs.reconcile(self, digest, snapshot_at, final, total)

    @contextmanager
    def _bulk_write(self) -> Iterator[None]:
        """The store held for a bulk write, its mirror caught up with the log: readers meanwhile get
        the list as every write that has answered left it, instead of waiting."""
        with self._lock:
            self._follow()
            self._encode_for_readers()
            start, body = self.committer.begin_bulk(), self._encoded.body_for(self.mirror.version)
            self._before_bulk = (body, start) if body is not None else None
            try:
                yield
            finally:
                # Until this write's list is encoded readers keep getting the one before it: the write
                # has not answered yet.
                try:
                    self._encode_for_readers()
                finally:
                    self._before_bulk = None
                    self.committer.end_bulk()

    # ------------------------------------------------------------------ remote advertisements
    def replace_remote(
        self, peer_id: str, ads: Sequence[AdvertisementInput], *, until_ms: int | None = None, direct: bool = True
    ) -> BulkResult:
        """An origin's complete set of its own public ads replaces what it advertised before; it lasts
        until `until_ms` (a signed set's expiry) or one TTL; `direct`: this node exchanges with it."""
        with self._bulk_write():
            clock, batch = self.clock(), self.commit_batch
            held = {rid: e for rid, e in self.mirror.remote.get(peer_id, {}).items() if e.expires_at > clock.now}
            plans, result = decide.plan_remote_set(
                self.keys, peer_id, held, ads, clock, now_micros(), batch, until_ms=until_ms, direct=direct
            )
            self.committer.commit(plans, clock.now_ms, result)
            return result

    def forget_peer(self, peer_id: str) -> BulkResult:
        """Drop a peer's advertisements, and leave a tombstone no earlier write of them can pass."""
        with self._lock:
            self._follow()
            clock = self.clock()
            held = self.mirror.remote.get(peer_id, {})
            result = BulkResult()
            plans = decide.plan_forget(self.keys, peer_id, dict(held), clock, now_micros(), self.commit_batch)
            self.committer.commit(plans, clock.now_ms, result)
            self._encode_for_readers()
            return result

    # ------------------------------------------------------------------ reading
    def _read(self, prefetch: Prefetch | None = None) -> None:
        if not self.committer.take_prefetch(prefetch):
            self._follow()
        self.mirror.expire(time.time())

    def local_advertisement(self, register_id: str) -> Entry | None:
        with self._reading():
            return self.mirror.local.get(register_id)

    def local_advertisements(self) -> list[Entry]:
        with self._reading():
            return list(self.mirror.local.values())

    def remote_advertisements(self, peer_id: str | None = None) -> list[Entry]:
        with self._reading():
            remote = self.mirror.remote
            peers = [peer_id] if peer_id is not None else list(remote)
            return [entry for pid in peers for entry in remote.get(pid, {}).values()]

    def remote_count(self) -> int:
        with self._reading():
            return sum(len(entries) for entries in self.mirror.remote.values())

    def available(self) -> list[dict[str, Any]]:
        """Local public ads and remote ads grouped by register (ARCHITECTURE §4)."""
        with self._reading():
            return aggregate(self.mirror.local, self.mirror.remote)

    def available_json(self) -> bytes:
        """The encoded list, encoded again once the mirror changed.

        While a bulk write holds the store (a full sync being applied), a reader gets the list as it
        was before that write, at once, as long as no other process has written since (every log
        entry after the one the write began at is one of its own): reconciliation must not slow the
        list down, and no read misses a write that has answered. Otherwise it waits for the store.
        """
        before = self._before_bulk
        prefetch = self.committer.prefetch() if before is None else None  # (during a bulk write it would be stale)
        while True:
            before = self._before_bulk
            if before is not None and self.committer.only_own_since(before[1]):
                return before[0]
            if self._lock.acquire(timeout=-1 if before is not None else _READER_POLL_S):
                break
        try:
            self._read(prefetch)
            self._read_once = True
            return self._encoded.body(self.mirror)
        finally:
            self._lock.release()

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._follow()
            state, breaker, journal = self.mirror.full_sync, self.committer.breaker, self.committer.journal
            return {
                "store": "degraded" if self.degraded else "ok",
                "degradedSince": format_seconds(breaker.degraded_since),
                "lastError": breaker.last_error or None,
                "journalLength": len(journal),
                "journalDropped": journal.dropped,
                "localAdvertisements": len(self.mirror.local),
                "remoteAdvertisements": sum(len(entries) for entries in self.mirror.remote.values()),
                "lastFullSync": {
                    "snapshotAt": format_micros(state.last_snapshot_at) if state.last_snapshot_at else None,
                    "appliedAt": format_seconds(state.last_applied_at),
                    "result": state.last_result,
                }
                if state.last_applied_at
                else None,
                "heldRemovals": sorted(state.held_ids),
                "voidedSnapshots": state.voided,
            }
