"""The Peer Service's pool of register advertisements: Redis with a TTL, mirrored in memory.

The façade holds the mirror and the lock and wires the parts together: it asks `decide` what
an input means against the mirror, carries the resulting writes to Redis through `redis_io`
(one conditional script call per batch, so processes that share Redis converge whatever the
order of their writes), falls back on `recovery` when Redis fails, and renders the available
list through `view`. Other processes learn about changes from a change stream.
"""

from __future__ import annotations

import logging
import operator
import secrets
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, TypeVar

import orjson
import redis
from django.core.cache.backends.base import BaseCache

from peers.store import decide
from peers.store.model import (
    REMOVED,
    SWEPT,
    AdvertisementInput,
    BulkResult,
    DigestAnswer,
    Entry,
    FullSyncState,
    MarksLost,
    MarksUnavailable,
    StaleFullSync,
    Tombstone,
    encode_value,
    format_micros,
    format_seconds,
    merged_fields,
    now_micros,
    value_stamp,
    well_formed,
)
from peers.store.recovery import Breaker, Journal, aged, set_args, write_back_ops
from peers.store.redis_io import CommitReply, Keys, Ops, PoolRead, RedisIO, stream_order
from peers.store.view import Rendering, aggregate
from sorcha_site import redis_connections
from sorcha_site.memory import drop_free_lists, gc_paused

logger = logging.getLogger(__name__)

T = TypeVar("T")

# Bookkeeping keys (generation, change stream, epoch, full-sync state) outlive advertisements.
_BOOKKEEPING_TTL_S = 86_400.0
# Ids whose TTL one script call refreshes. Redis runs one script at a time, about 1 µs an id, and every
# read of every process (its catch-up round trip) waits behind the one running: 1,000 ids hold it ~1 ms.
# (10,000 would hold it ~10 ms: a digest sync of 6,000 then raises the p99 of reads in another process from
# ~14 to ~20 ms.)
_REFRESH_STEP = 1_000
# Items a script call writes: an upsert holds Redis ~4 µs, so 1,000 hold it ~4 ms. (2,000 add 2-3 ms to
# the p99 of reads during plain full syncs of 6,000; full syncs are no slower with 1,000.)
_COMMIT_BATCH = 1_000
_EXPIRES_AT = operator.attrgetter("expires_at")
# A render of this many rows or more empties the interpreter's free lists after it (see `_render`).
_RELEASE_AFTER_ROWS = 50_000


def _bookkeeping_ttl_ms(ttl: float) -> int:
    return int(max(_BOOKKEEPING_TTL_S, 10 * float(ttl)) * 1000)


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
        commit_batch: int = _COMMIT_BATCH,
        start_watcher: bool = True,
        reconcile_interval: float | None = None,
        clock_skew: float = 300.0,
        journal_max_ops: int = 200_000,
        journal_max_age: float | None = None,
        rendering_cache: BaseCache | None = None,
        read_at_start: PoolRead | None = None,
    ) -> None:
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
        self._socket_timeout = socket_timeout
        self._io = RedisIO(client, self.keys)
        self._breaker = Breaker(breaker_cooldown)
        self._journal = Journal(journal_max_ops, journal_max_age if journal_max_age is not None else self.ttl)
        self._lock = threading.RLock()
        self._local: dict[str, Entry] = {}
        self._remote: dict[str, dict[str, Entry]] = {}
        self._tombstones: dict[str, Tombstone] = {}
        self._peer_tombstones: dict[str, Tombstone] = {}
        self._full_sync = FullSyncState()
        self._epoch = ""
        self._generation = 0
        self._stream_id = b"0-0"
        self._version = 0  # bumped on every change to the mirror; keys the rendered available list
        # One key per store instance: a store built again for the same prefix (a reset) never takes
        # the rendering of another instance's mirror, whose version numbers may coincide.
        self.rendering_key = f"{prefix}:available:{secrets.token_hex(6)}"
        self._rendering = Rendering(rendering_cache, self.rendering_key)
        # No entry expires before this moment (only ever lowered by entries taken from Redis).
        self._expiry_horizon = 0.0
        self._writing_bulk = False  # a bulk write holds the lock (readers do not wait for it)
        self._pruned_at = 0.0  # when the watcher last pruned expired tombstones (time.monotonic)
        # Another process's full sync refreshed the mirror since the rendering was made: patch it when read.
        self._refresh_unpatched = False
        self._committer: ThreadPoolExecutor | None = None  # started by the first bulk of several script calls
        self._stop = threading.Event()
        self._load_at_start(read_at_start if read_at_start is not None and read_at_start.prefix == prefix else None)
        self._watcher: threading.Thread | None = None
        if start_watcher:
            self._watcher = threading.Thread(target=self._watch, name=f"store-watcher-{prefix}", daemon=True)
            self._watcher.start()

    # ------------------------------------------------------------------ keys (kept for callers and tests)
    def local_key(self, register_id: str) -> str:
        return self.keys.local(register_id)

    def remote_key(self, peer_id: str, register_id: str) -> str:
        return self.keys.remote(peer_id, register_id)

    def tomb_key(self, register_id: str) -> str:
        return self.keys.tomb(register_id)

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    @property
    def _bookkeeping_ttl_ms(self) -> int:
        return _bookkeeping_ttl_ms(self.ttl)

    # ------------------------------------------------------------------ health
    @property
    def degraded(self) -> bool:
        return self._breaker.open

    def _redis(self, call: Callable[[], T]) -> T | None:
        """Run one Redis interaction; on failure open the breaker and return None.

        While the breaker is open nothing is tried: the watcher owns recovery, and requests
        never wait on a broken Redis.
        """
        if self.degraded:
            return None
        try:
            return call()
        except redis.RedisError as exc:
            self._trip(exc)
            return None

    def _trip(self, exc: Exception) -> None:
        if self._breaker.trip(exc):
            logger.warning("event=store_degraded prefix=%s error=%r", self.prefix, exc)

    def _watch(self) -> None:
        """Notice other processes' changes as they are made, and Redis coming back (or coming back empty),
        without waiting for a request: a read then finds the mirror and its rendering up to date."""
        while True:
            seen, after = self._stream_id, None  # after: the entry that woke the watcher
            if self.degraded:
                if self._stop.wait(self._breaker.cooldown):
                    return
            else:
                after = self._await_change(seen)
                if self._stop.is_set():
                    return
                if self._followed(after) and time.monotonic() < self._pruned_at + self._change_wait:
                    continue  # (tombstones are still pruned once a `_change_wait` when only skipping)
            try:
                with self._lock:
                    if self.degraded:
                        self._try_recover()
                    elif not self._followed(after):  # (its writer may have followed it meanwhile)
                        self._redis(self._catch_up)
                    self._prune_tombstones()
                    self._pruned_at = time.monotonic()
            except Exception:
                logger.exception("event=store_watcher_failed prefix=%s", self.prefix)
            if after is not None and self._stream_id == seen:  # an entry the catch-up did not take: no spin
                self._stop.wait(self._change_wait)

    def _followed(self, entry_id: bytes | None) -> bool:
        """Whether the mirror holds the change-stream entry `entry_id` already: this process's own change,
        followed as it wrote it. The watcher skips those: a catch-up would hold the store from this
        process's next write and from its reads for nothing (a Redis round trip under the lock)."""
        return entry_id is not None and stream_order(entry_id) <= stream_order(self._stream_id)

    @property
    def _change_wait(self) -> float:
        """How long the watcher blocks on the change stream: under the socket timeout, at most a cooldown."""
        return min(self._breaker.cooldown, self._socket_timeout / 2)

    def _await_change(self, seen: bytes) -> bytes | None:
        """Block until the change stream has an entry after `seen` (its id), or for `_change_wait` (None);
        a failure is left to the catch-up that follows to notice."""
        try:
            return self._io.await_change(seen, int(self._change_wait * 1000))
        except redis.RedisError:
            self._stop.wait(self._change_wait)
            return None
        except Exception:  # a reply of another shape: the watcher goes on (the catch-up that follows reads)
            logger.exception("event=store_watcher_failed prefix=%s", self.prefix)
            self._stop.wait(self._change_wait)
            return None

    def _prune_tombstones(self) -> None:
        now = time.time()
        for tombs in (self._tombstones, self._peer_tombstones):
            for key in [key for key, tomb in tombs.items() if tomb.expires_at <= now]:
                del tombs[key]

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self._rendering.forget()
        if self._committer is not None:
            self._committer.shutdown(wait=True)
        self.client.close()

    # ------------------------------------------------------------------ loading and catching up
    @staticmethod
    def read_at_start(client: redis.Redis, prefix: str, ttl: float) -> PoolRead:
        """Start the read a store for `prefix` loads from at start-up (`read_at_start=`), before building
        it: a web process starts it before Django is set up, so Redis reads the pool meanwhile."""
        return RedisIO(client, Keys(prefix)).read_pool(epoch=(secrets.token_hex(8), _bookkeeping_ttl_ms(ttl)))

    def _load_at_start(self, read: PoolRead | None) -> None:
        with self._lock, gc_paused():
            try:
                if read is None:
                    read = self._io.read_pool(epoch=(secrets.token_hex(8), self._bookkeeping_ttl_ms))
                self._epoch = read.epoch()
                self._reload(initial=True, read=read)
            except redis.RedisError as exc:
                self._trip(exc)
                logger.warning("event=store_start_without_redis prefix=%s error=%r", self.prefix, exc)
                return
            # Render the list now, while the process starts, so that its first request is served at once.
            self._rendering.render(self._version, self._next_expiry(), self._local, self._remote, for_reader=False)

    def _establish_epoch(self) -> None:
        self._epoch = self._io.establish_epoch(secrets.token_hex(8), self._bookkeeping_ttl_ms)

    @gc_paused()
    def _reload(self, initial: bool, read: PoolRead | None = None) -> None:
        """Rebuild the mirror from Redis (a start-up load, or a gap in the change stream); each page is
        taken in while the next ones are read."""
        read = read if read is not None else self._io.read_pool()
        _, generation, last = read.head()
        previous_local, previous_remote = self._local, self._remote
        self._local, self._remote, self._tombstones, self._peer_tombstones = {}, {}, {}, {}
        for asked_at, keys, values, ttls in read.pages():
            self._absorb_page(keys, values, ttls, asked_at)
        if not initial:
            # Entries equal to what this process held keep their verification; others were written since.
            for register_id, entry in self._local.items():
                old = previous_local.get(register_id)
                entry.verified = old.verified if old is not None and old.value == entry.value else True
            for peer_id, entries in self._remote.items():
                for register_id, entry in entries.items():
                    old = previous_remote.get(peer_id, {}).get(register_id)
                    entry.verified = old.verified if old is not None and old.value == entry.value else True
        self._generation = generation
        self._stream_id = last[0][0] if last else b"0-0"
        self._changed()
        logger.info(
            "event=store_loaded prefix=%s local=%d remote=%d initial=%s",
            self.prefix,
            len(self._local),
            sum(len(entries) for entries in self._remote.values()),
            initial,
        )

    def _absorb_page(self, keys: list[str], values: list[str], ttls: list[int], now: float) -> None:
        """One page of a scan (asked for at `now`), straight into the mirror: a local advertisement
        (nearly all of a pool) becomes one compact entry holding the value as Redis has it; the rest
        goes the general way. Loaded entries are unverified until their source refreshes them."""
        local, ttl, local_prefix = self._local, self.ttl, self.keys.local("")
        cut = len(local_prefix)
        soonest = self._expiry_horizon
        for key, raw, pttl in zip(keys, values, ttls, strict=True):
            if not raw or pttl <= 0:
                continue
            expires_at = now + pttl / 1000
            register_id = key[cut:]
            if not key.startswith(local_prefix) or ":" in register_id:
                self._absorb_parsed(key, raw, expires_at, None)
                continue
            try:
                stamp = value_stamp(raw)
                # Each value on its own: values joined into one array can be fooled by two corrupt
                # neighbours that make valid JSON together. (The fields it decodes are dropped at once.)
                well_formed(raw)
            except (ValueError, orjson.JSONDecodeError) as exc:
                logger.error("event=store_entry_unreadable prefix=%s key=%s error=%r", self.prefix, key, exc)
                continue
            soonest = min(soonest, expires_at)
            local[register_id] = Entry(register_id, None, stamp, None, raw, expires_at - ttl, expires_at, False)
        self._expiry_horizon = min(self._expiry_horizon, soonest)

    def _absorb(self, key: str, stored: bytes | None, expires_at: float, verified: bool | None) -> None:
        """Take one key's current Redis state into the mirror (None: it is gone)."""
        self._absorb_parsed(key, stored.decode() if stored is not None else None, expires_at, verified)

    def _absorb_parsed(self, key: str, raw: str | None, expires_at: float, verified: bool | None) -> None:
        try:
            self._absorb_checked(key, raw, expires_at, verified)
        except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError) as exc:
            logger.error("event=store_entry_unreadable prefix=%s key=%s error=%r", self.prefix, key, exc)

    def _absorb_checked(self, key: str, raw: str | None, expires_at: float, verified: bool | None) -> None:
        self._expiry_horizon = min(self._expiry_horizon, expires_at)
        parsed = self.keys.parse(key)
        if not parsed:
            return
        kind = parsed[0]
        if kind == "l":
            register_id = parsed[1]
            if raw is None:
                self._local.pop(register_id, None)
                return
            stamp = value_stamp(raw)
            well_formed(raw)
            self._local[register_id] = Entry(
                register_id, None, stamp, None, raw, expires_at - self.ttl, expires_at, bool(verified)
            )
        elif kind == "r":
            peer_id, register_id = sys.intern(parsed[1]), parsed[2]
            if raw is None:
                self._remote.get(peer_id, {}).pop(register_id, None)
                return
            stamp = value_stamp(raw)
            well_formed(raw)
            self._remote.setdefault(peer_id, {})[register_id] = Entry(
                register_id, peer_id, stamp, None, raw, expires_at - self.ttl, expires_at, bool(verified)
            )
        elif kind in ("tomb", "ptomb"):
            tombs = self._tombstones if kind == "tomb" else self._peer_tombstones
            if raw is None:
                tombs.pop(parsed[1], None)
            else:
                tombs[parsed[1]] = Tombstone.decode(raw, expires_at)
        elif kind == "meta" and raw is not None:
            state = FullSyncState.decode(raw)
            # A full sync seen while running (not at start-up load) confirmed every local ad it did not hold.
            if verified and state.last_applied_at and state.last_applied_at != self._full_sync.last_applied_at:
                self._refresh_local_after_full_sync(state)
            self._full_sync = state

    def _refresh_local_after_full_sync(self, state: FullSyncState) -> None:
        """A full sync refreshed every local ad it listed: those it neither held back nor found changed
        after its snapshot (an ad pushed singly since keeps its own TTL, as Redis does)."""
        assert state.last_applied_at is not None
        expires_at = state.last_applied_at + self.ttl
        for register_id, entry in self._local.items():
            if register_id not in state.held_ids and entry.source_updated_at <= state.last_snapshot_at:
                entry.verified = True
                if expires_at > entry.expires_at:
                    entry.expires_at = expires_at
                    entry.refreshed_at = state.last_applied_at

    def _catch_up(self) -> None:
        """Apply what other processes changed since this one last looked (one round trip when nothing did)."""
        epoch, generation, entries = self._io.changes_since(self._stream_id)
        if epoch is None or epoch.decode() != self._epoch:
            logger.warning("event=store_epoch_changed prefix=%s action=write_back", self.prefix)
            self._recover()
            return
        sequence = [int(fields[b"g"]) for _, fields in entries]
        if generation == self._generation and (not sequence or sequence[0] > self._generation):
            return  # nothing new (an entry written between reading the generation and the stream: next time)
        # An entry after this process's place in the stream at no newer a generation than its own: Redis
        # went back to an older dump, and another process's change took a number this process held already.
        if generation < self._generation or (sequence and sequence[0] <= self._generation):
            # Redis went back in time (an older dump, a lagging replica): this process holds newer state.
            logger.warning(
                "event=store_generation_rewound prefix=%s held=%d redis=%d action=write_back",
                self.prefix,
                self._generation,
                generation,
            )
            self._recover()
            return
        if not entries or sequence[0] != self._generation + 1 or sequence[-1] != generation:
            self._reload(initial=False)
            return
        keys = list(dict.fromkeys(key for _, fields in entries for key in fields[b"k"].split(b" ")))
        now = time.time()
        for key, (raw, pttl) in zip(keys, self._io.fetch(keys), strict=True):
            self._absorb(key.decode(), raw if pttl > 0 else None, now + max(pttl, 0) / 1000, verified=True)
        self._generation = generation
        self._stream_id = entries[-1][0]
        if keys == [self.keys.meta.encode()]:
            # A full sync that only refreshed: the rendering is patched instead of re-aggregated; now if its
            # body was read, else when it next is (a process nobody reads from spends nothing on it, and
            # refreshes in a row cost one patch).
            # A bulk write holding the store serves the kept body to readers meanwhile: patched now too.
            self._refresh_unpatched = True
            if self._rendering.read or self._writing_bulk:
                self._patch_refreshed()
        else:
            self._changed()

    # ------------------------------------------------------------------ committing
    def _run(self, ops: Ops, header: list[str] | None = None) -> None:
        """Send a batch to Redis in short script calls, or journal it while degraded."""
        for part in ops.chunks(self.commit_batch, header):
            self._commit(part)

    def _commit(self, part: Ops, sent: tuple[str, Future[CommitReply]] | None = None) -> None:
        """One script call: its results delivered, or the part journaled while degraded.

        `sent`: the epoch a pipelined call of this part was sent with, and its pending reply.
        """
        if not self.degraded:
            try:
                epoch = sent[0] if sent is not None else self._epoch
                reply = sent[1].result() if sent is not None else self._io.commit(epoch, *self._commit_args(part))
            except redis.RedisError as exc:
                self._trip(exc)
            else:
                if reply.status == "epoch":
                    if epoch != self._epoch:  # sent before this process wrote back: send it again
                        self._commit(part)
                        return
                    try:  # Redis lost its data since we last looked: write back, retry
                        self._recover()
                    except redis.RedisError as exc:
                        self._trip(exc)
                    else:
                        self._commit(part)  # (its header, if any, is already in it)
                        return
                elif reply.status == "stale":
                    raise StaleFullSync(int(part.ops[0][2]), int(reply.stored))
                else:
                    part.deliver(reply.results)
                    self._follow_own_generation(reply)
                    return
        self._journal.append(part.ops)
        part.deliver(None)

    def _commit_args(self, part: Ops) -> tuple[int, bytes]:
        return self._bookkeeping_ttl_ms, part.encode()

    def _send_ahead(self, part: Ops, in_flight: deque[tuple[Ops, tuple[str, Future[CommitReply]]]]) -> None:
        """Start the script call of `part` on the committer thread, so Redis applies it while this thread
        plans the next part; at most two calls are in flight, and their results come back in order."""
        if self.degraded:
            self._settle(in_flight)
            self._commit(part)
            return
        if self._committer is None:
            self._committer = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"store-commit-{self.prefix}")
        epoch = self._epoch
        in_flight.append((part, (epoch, self._committer.submit(self._io.commit, epoch, *self._commit_args(part)))))
        while len(in_flight) > 2:
            self._commit(*in_flight.popleft())

    def _settle(self, in_flight: deque[tuple[Ops, tuple[str, Future[CommitReply]]]]) -> None:
        while in_flight:
            self._commit(*in_flight.popleft())

    def _follow_own_generation(self, reply: CommitReply) -> None:
        """Our own change is already in the mirror: take its generation as seen, but only when this
        batch's entry is the one right after this process's place in the stream, at the next number.
        Otherwise (it changed nothing, another process's change came in between, or Redis went back
        to an older dump whose numbers another process's change then reused) the next catch-up reads
        the stream from where this process left it."""
        if reply.entry and reply.previous == self._stream_id and reply.generation == self._generation + 1:
            self._generation = reply.generation
            self._stream_id = reply.entry

    def _changed(self) -> None:
        self._version += 1
        self._refresh_unpatched = False  # the next rendering is made from the mirror as a whole

    # ------------------------------------------------------------------ recovery
    def _try_recover(self) -> None:
        if not self._breaker.may_probe():
            return
        try:
            self.client.ping()
            self._recover()
        except redis.RedisError as exc:
            self._trip(exc)
            return
        logger.info("event=store_recovered prefix=%s degraded_seconds=%.1f", self.prefix, self._breaker.close())

    def _recover(self) -> None:
        """Replay the journal with what each write has left, write back the live mirror, reload."""
        self._establish_epoch()
        batches = self._journal.take()
        replayed = 0
        try:
            for batch in batches:
                encoded = aged(batch)
                if encoded is not None:
                    self._io.commit("", self._bookkeeping_ttl_ms, encoded)
                replayed += 1
            self._write_back()
        except redis.RedisError:
            self._journal.put_back(batches[replayed:])  # what Redis already took is not replayed twice
            raise
        self._reload(initial=False)

    def _write_back(self) -> None:
        ops = write_back_ops(
            self.keys,
            self._local,
            self._remote,
            self._tombstones,
            self._peer_tombstones,
            self._full_sync,
            self._bookkeeping_ttl_ms,
            time.time(),
        )
        for part in ops.chunks(self.commit_batch):
            self._io.commit("", self._bookkeeping_ttl_ms, part.encode())

    # ------------------------------------------------------------------ local advertisements
    def _sync(self) -> None:
        """Bring the mirror up to date before deciding anything."""
        if not self.degraded:
            self._redis(self._catch_up)

    def _open_upserts(self, ops: Ops, now: float, result: BulkResult, log: bool, floor: int | None) -> list[Any]:
        """Start one U operation in `ops` for the upserts that follow (until a removal or the batch's end);
        returns the list the planner extends: the op's arguments, then planned (id, stamp, value, current)."""
        op = [
            "U",
            self.keys.local(""),
            self.keys.tomb(""),
            str(self._ttl_ms),
            "1" if log else "0",
            str(-1 if floor is None else floor),
        ]
        planned: list[tuple[str, int, str, Entry | None]] = []
        ops.add_strings(op, lambda digits: self._upserts_landed(planned, digits, now, result))
        return [op, planned]

    def _upserts_landed(
        self, planned: list[tuple[str, int, str, Entry | None]], digits: bytes | None, now: float, result: BulkResult
    ) -> None:
        """The mirror follows what each upsert did in Redis (digits None: journaled, applied on faith)."""
        local, tombstones, expires_at = self._local, self._tombstones, now + self.ttl
        refused: list[str] = []
        for index, (register_id, stamp, value, current) in enumerate(planned):
            outcome = -1 if digits is None else digits[index] - 48
            if outcome == 0:  # Redis holds something newer than this process knew: take it
                refused += [self.keys.local(register_id), self.keys.tomb(register_id)]
                result.stale += 1
            elif current is not None and (outcome == 2 or (outcome == -1 and current.value == value)):
                current.expires_at, current.refreshed_at, current.verified = expires_at, now, True
                result.unchanged += 1
            else:
                if current is None:
                    result.added += 1
                else:
                    result.updated += 1
                local[register_id] = Entry(register_id, None, stamp, None, value, now, expires_at, True)
                tombstones.pop(register_id, None)
        if refused:
            self._refetch(refused)

    def _plan_removal(
        self,
        ops: Ops,
        register_id: str,
        stamp: int | None,
        now: float,
        result: BulkResult,
        kind: str = REMOVED,
        outranked_by: str = "",
    ) -> None:
        """A removal; a sweep's (`kind` SWEPT) names the full-sync state that a newer sync outranks it by."""
        current = self._local.get(register_id)
        if decide.removal_is_stale(current, stamp, now):
            result.stale += 1
            return

        def landed(outcome: int) -> None:
            existed = current is not None and current.expires_at > now
            if outcome == 0:
                # Nothing removed in Redis: what it holds (a newer entry, the tombstone it kept or
                # not, or nothing) is the truth, for the mirror too.
                self._refetch([self.keys.local(register_id), self.keys.tomb(register_id)])
                return
            if outcome == 1 or existed:
                result.removed += 1
            self._local.pop(register_id, None)
            self._remember_removal(register_id, stamp, now, kind)

        tomb_key = "" if stamp is None else self.keys.tomb(register_id)
        ops.add(
            [
                "D",
                self.keys.local(register_id),
                -1 if stamp is None else stamp,
                tomb_key,
                self._ttl_ms,
                kind,
                outranked_by,
            ],
            landed,
        )

    def _remember_removal(self, register_id: str, stamp: int | None, now: float, kind: str) -> None:
        if stamp is not None:
            tomb = self._tombstones.get(register_id)
            if tomb is None or tomb.source_updated_at < stamp:
                self._tombstones[register_id] = Tombstone(stamp, now + self.ttl, kind)

    def _refetch(self, keys: list[str]) -> None:
        fetched = self._redis(lambda: self._io.fetch(keys))
        if fetched is None:
            return
        now = time.time()
        for key, (raw, pttl) in zip(keys, fetched, strict=True):
            self._absorb(key, raw if pttl > 0 else None, now + max(pttl, 0) / 1000, verified=True)

    def advertise(self, advertisement: AdvertisementInput) -> tuple[BulkResult, Entry | None]:
        """A single push: `isPublic` true upserts, false removes (never held by the guard)."""
        return self._single([advertisement])

    def remove(self, register_id: str, source_updated_at: int | None = None) -> BulkResult:
        result, _ = self._single([AdvertisementInput(register_id, False, source_updated_at=source_updated_at)])
        return result

    def _single(self, advertisements: list[AdvertisementInput]) -> tuple[BulkResult, Entry | None]:
        with self._lock:
            self._sync()
            result = self._apply_items(advertisements, log=True, floor=None)
            self._changed()
            self._rerender_if_served()
            return result, self._local.get(advertisements[-1].register_id)

    def _apply_items(self, advertisements: Iterable[AdvertisementInput], log: bool, floor: int | None) -> BulkResult:
        """Plan each item against the mirror and write them, a script call per `commit_batch` items sent
        while the next ones are planned (Redis works on its own core meanwhile). Consecutive upserts
        travel as one operation; the items keep their order."""
        result = BulkResult()
        now = time.time()
        local, tombstones, live, is_stale = self._local, self._tombstones, decide.live, decide.upsert_is_stale
        ops = Ops()
        upserts: list[Any] | None = None  # the open U operation: [its arguments, what each item becomes]
        planned = 0
        in_flight: deque[tuple[Ops, tuple[str, Future[CommitReply]]]] = deque()
        try:
            for advertisement in advertisements:
                result.processed += 1
                register_id = advertisement.register_id
                if not advertisement.is_public:
                    upserts = None  # a removal between upserts: those after it go in a new operation
                    self._plan_removal(ops, register_id, advertisement.source_updated_at, now, result)
                else:
                    stamp = advertisement.source_updated_at
                    if stamp is None:
                        stamp = now_micros()
                    current = live(local.get(register_id), now)
                    tomb = tombstones.get(register_id)
                    if (current is not None or tomb is not None) and is_stale(current, tomb, stamp, now, floor):
                        result.stale += 1
                        continue
                    value = encode_value(stamp, merged_fields(advertisement, current.fields if current else None))
                    if upserts is None:
                        upserts = self._open_upserts(ops, now, result, log, floor)
                    upserts[0] += (register_id, str(stamp), value)
                    upserts[1].append((register_id, stamp, value, current))
                planned += 1
                if planned >= self.commit_batch:
                    self._send_ahead(ops, in_flight)
                    ops, upserts, planned = Ops(), None, 0
                    local, tombstones = self._local, self._tombstones  # a recovery meanwhile rebuilt them
        finally:
            self._settle(in_flight)
        self._run(ops)
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
        with self._bulk_write(), gc_paused():
            self._sync()
            void = False
            if full_sync:
                snapshot_at = snapshot_at if snapshot_at is not None else now_micros()
                void = self._judge_snapshot(snapshot_at)
            try:
                result = self._apply_items(advertisements, log=snapshot_at is None, floor=snapshot_at)
                if snapshot_at is not None:
                    listed = {advertisement.register_id for advertisement in advertisements}
                    if full_sync:
                        self._sweep(snapshot_at, listed, result, void, total)
                    else:
                        self._mark(snapshot_at, listed, result)
            finally:
                self._changed()
                self._rerender_if_served()
            return result

    @contextmanager
    def _bulk_write(self) -> Iterator[None]:
        """The store held for a bulk write (a full sync, a peer's set): readers meanwhile get the
        rendering of the mirror as it stands instead of waiting (they do wait for a catch-up or a
        single push: those are short)."""
        with self._lock:
            self._writing_bulk = True
            try:
                yield
            finally:
                self._writing_bulk = False

    def _judge_snapshot(self, snapshot_at: int) -> bool:
        """Raises StaleFullSync for a snapshot older than the last applied; True when that one is voided."""
        verdict = decide.judge_snapshot(
            snapshot_at,
            self._full_sync,
            time.time(),
            skew_s=self.clock_skew,
            void_after_s=self.reconcile_interval,
        )
        if verdict is decide.SnapshotVerdict.STALE:
            raise StaleFullSync(snapshot_at, self._full_sync.last_snapshot_at)
        if verdict is decide.SnapshotVerdict.VOID:
            logger.warning(
                "event=full_sync_snapshot_voided prefix=%s stored=%s applied_at=%s incoming=%s",
                self.prefix,
                format_micros(self._full_sync.last_snapshot_at),
                format_seconds(self._full_sync.last_applied_at),
                format_micros(snapshot_at),
            )
            return True
        return False

    def reconcile(
        self, digest: Sequence[tuple[str, int]], snapshot_at: int, final: bool, total: int | None = None
    ) -> DigestAnswer:
        """One page of a full sync by digest: `(registerId, sourceUpdatedAt)` of registers the source lists.

        What is held as stated has its TTL refreshed in Redis (one script call per 1,000, nothing
        rewritten) and counts as unchanged; the rest is `needed`, for the source to send in full with
        the same `snapshotAt`. Every listed register is marked for the sweep; a final page that needs
        nothing completes the full sync here (the sweep, the guard and the staleness check of a plain
        full sync). Raises StaleFullSync, MarksUnavailable (Redis unreachable: retry) and MarksLost.
        """
        with self._bulk_write(), gc_paused():
            self._sync()
            if self.degraded:
                raise MarksUnavailable(snapshot_at)
            now = time.time()
            held, needed = decide.split_digest(self._local, digest, now)
            void = self._judge_snapshot(snapshot_at) if final and not needed else False
            patched = False

            def patch_rendering() -> None:
                nonlocal patched
                patched = self._rendering.patch_refreshed(self._version, self._next_expiry(), self._local)
                self._refresh_unpatched = self._refresh_unpatched and not patched

            missing = self._refresh(held, now, alongside=patch_rendering)
            if missing:  # gone from Redis meanwhile (removed by another process): sent in full, or refused
                needed.extend(missing)
                patched = False
            result = BulkResult(processed=len(held) - len(missing), unchanged=len(held) - len(missing))
            complete = final and not needed
            listed = {register_id for register_id, _ in digest}
            try:
                if complete:
                    self._sweep(snapshot_at, listed, result, void, total, now=now)
                else:
                    self._mark(snapshot_at, listed, result)
            finally:
                if result.changed or not patched:
                    self._changed()
                    self._rerender_if_served()
            return DigestAnswer(result, needed, complete)

    def _refresh(self, register_ids: list[str], now: float, alongside: Callable[[], None]) -> list[str]:
        """Refresh the TTL of local entries held as stated, in Redis and in the mirror; returns those
        Redis no longer holds (taken from Redis again).

        Redis works through the script calls (`_REFRESH_STEP` ids each) on its own core while this
        thread updates the mirror and runs `alongside`.
        """
        if not register_ids:
            alongside()
            return []
        prefix, ttl_ms, step = self.keys.local(""), self._ttl_ms, _REFRESH_STEP
        parts = [register_ids[start : start + step] for start in range(0, len(register_ids), step)]
        replies: list[CommitReply] = []
        failures: list[redis.RedisError] = []

        def send() -> None:
            try:
                for part in parts:
                    batch = orjson.dumps([["T", prefix, str(ttl_ms), *part]])
                    replies.append(self._io.commit(self._epoch, self._bookkeeping_ttl_ms, batch))
            except redis.RedisError as exc:
                failures.append(exc)

        sender = threading.Thread(target=send, name=f"store-refresh-{self.prefix}", daemon=True)
        sender.start()
        expires_at, local = now + self.ttl, self._local
        for register_id in register_ids:
            entry = local[register_id]
            entry.expires_at, entry.refreshed_at, entry.verified = expires_at, now, True
        alongside()
        sender.join()
        if failures:
            self._trip(failures[0])
        digits = b"".join(reply.results or b"" for reply in replies)
        if failures or any(reply.status != "ok" for reply in replies):
            # Redis failed, or lost its data: the ordinary path journals or writes back (PEXPIRE is idempotent).
            collected: list[bytes | None] = []
            for part in parts:
                ops = Ops()
                ops.add(["T", prefix, ttl_ms, *part], collected.append)
                self._run(ops)
            if any(part_digits is None for part_digits in collected):
                return []  # journaled: the mirror keeps its refresh, as for any journaled write
            digits = b"".join(part_digits or b"" for part_digits in collected)
        missing = [register_id for register_id, digit in zip(register_ids, digits, strict=True) if digit != 49]
        if missing:
            self._refetch([key for rid in missing for key in (self.keys.local(rid), self.keys.tomb(rid))])
        return missing

    def _mark(self, snapshot_at: int, listed: set[str], result: BulkResult) -> None:
        """Requests of a full sync before its last leave their marks in Redis for every process, and add
        their counts to the sync's (recorded with the sweep: the counts of the whole sync)."""
        if not self.degraded:
            ops = Ops()
            if listed:
                ops.add(["A", self.keys.mark(snapshot_at), self._ttl_ms, *sorted(listed)])
            counts = [str(part) for name, count in result.as_dict().items() if count for part in (name, count)]
            if counts:
                ops.add(["H", self.keys.mark_counts(snapshot_at), self._ttl_ms, *counts])
            self._run(ops)
        if self.degraded:
            raise MarksUnavailable(snapshot_at)

    def _sweep(
        self,
        snapshot_at: int,
        listed: set[str],
        result: BulkResult,
        void: bool,
        total: int | None = None,
        now: float | None = None,
    ) -> None:
        """Mark-and-sweep: remove local ads neither listed by this sync nor changed after its snapshot.

        `total`, when the source says it, is how many registers the whole sync listed: marks that
        fall short of it were lost (Redis restarted or failed over between the requests).
        """
        earlier = self._redis(lambda: self._io.marks(snapshot_at))
        if earlier is None:
            raise MarksUnavailable(snapshot_at)
        marks, earlier_counts = earlier
        marked = listed | marks
        if total is not None and len(marked) < total:
            logger.warning(
                "event=full_sync_marks_missing prefix=%s snapshot_at=%s marked=%d total=%d",
                self.prefix,
                format_micros(snapshot_at),
                len(marked),
                total,
            )
            raise MarksLost(snapshot_at, len(marked), total)
        now = time.time() if now is None else now
        previous = self._full_sync
        candidates = decide.sweep_candidates(self._local, marked, snapshot_at, now)
        live_count = sum(1 for entry in self._local.values() if entry.expires_at > now)
        plan = decide.guard_sweep(candidates, live_count, len(marked), previous, snapshot_at)
        if plan.held:
            logger.warning(
                "event=full_sync_removal_held prefix=%s snapshot_at=%s held=%d confirmed=%d local=%d listed=%d",
                self.prefix,
                format_micros(snapshot_at),
                len(plan.held),
                len(plan.remove),
                live_count,
                len(marked),
            )
        result.held = len(plan.held)
        state = FullSyncState(
            last_snapshot_at=snapshot_at,
            last_applied_at=now,
            held_snapshot_at=snapshot_at if plan.held else None,
            held_ids=plan.held,
            voided=previous.voided + (1 if void else 0),
        )
        self._commit_sweep(plan.remove, now, result, state, void, earlier_counts)

    def _commit_sweep(
        self,
        removal: frozenset[str],
        now: float,
        result: BulkResult,
        state: FullSyncState,
        void: bool,
        earlier_counts: dict[str, int] | None = None,
    ) -> None:
        """Apply the sweep and record the sync; `earlier_counts`: what the sync's earlier requests counted."""
        snapshot_at = state.last_snapshot_at
        # Each script call of the sweep is guarded on its own (a newer full sync may land between two),
        # and each removal yields to a newer full sync recorded meanwhile. A voided sync has no guard.
        guard = None if void else ["G", self.keys.meta, str(snapshot_at)]
        outranked_by = "" if void else self.keys.meta
        sweep = Ops()
        for register_id in sorted(removal):
            self._plan_removal(sweep, register_id, snapshot_at, now, result, SWEPT, outranked_by)
        if guard is not None and not len(sweep):
            sweep.add(guard)
            guard = None
        self._run(sweep, header=guard)
        earlier_counts = earlier_counts or {}
        state.last_result = {name: count + earlier_counts.get(name, 0) for name, count in result.as_dict().items()}
        recorded: list[int] = []
        record = Ops()
        record.add(
            ["M", self.keys.meta, snapshot_at, state.encode(), self._bookkeeping_ttl_ms, "1" if void else "0"],
            recorded.append,
        )
        record.add(["X", self.keys.mark(snapshot_at), self.keys.mark_counts(snapshot_at)])
        self._run(record)
        if recorded == [0]:  # a newer full sync was recorded meanwhile: it is the state, not this one
            logger.warning(
                "event=full_sync_superseded prefix=%s snapshot_at=%s", self.prefix, format_micros(snapshot_at)
            )
            self._refetch([self.keys.meta])
            return
        # Everything listed was refreshed by this sync; ads it held were not confirmed.
        self._full_sync = state
        self._refresh_local_after_full_sync(state)
        logger.log(
            logging.INFO if result.changed or result.held else logging.DEBUG,
            "event=full_sync_applied prefix=%s snapshot_at=%s %s",
            self.prefix,
            format_micros(snapshot_at),
            " ".join(f"{key}={value}" for key, value in result.as_dict().items()),
        )

    # ------------------------------------------------------------------ remote advertisements
    def replace_remote(self, peer_id: str, advertisements: Sequence[AdvertisementInput]) -> BulkResult:
        """A peer's complete set of its own public ads replaces what it advertised before.

        A remote entry is stamped with this node's clock when first received in its current
        form, so a peer forgotten (banned) later outranks any write-back of it.
        """
        with self._bulk_write():
            self._sync()
            now = time.time()
            stamp = now_micros()
            result = BulkResult(processed=len(advertisements))
            current = self._remote.get(peer_id, {})
            listed: dict[str, Entry] = {}
            ops = Ops()
            for advertisement in advertisements:
                existing = current.get(advertisement.register_id)
                fields = merged_fields(advertisement, None)
                if existing is not None and existing.fields == fields:
                    result.unchanged += 1
                    entry_stamp, value = existing.source_updated_at, existing.value
                else:
                    if existing is not None:
                        result.updated += 1
                    else:
                        result.added += 1
                    entry_stamp, value = stamp, encode_value(stamp, fields)
                entry = Entry(advertisement.register_id, peer_id, entry_stamp, fields, value, now, now + self.ttl, True)
                listed[advertisement.register_id] = entry
                ops.add(set_args(self.keys, entry, self.ttl))
            for register_id in current.keys() - listed.keys():
                result.removed += 1
                ops.add(["D", self.keys.remote(peer_id, register_id), -1, "", 0, REMOVED])
            self._run(ops)
            if listed:
                self._remote[peer_id] = listed
            else:
                self._remote.pop(peer_id, None)
            self._changed()
            self._rerender_if_served()
            return result

    def forget_peer(self, peer_id: str) -> BulkResult:
        """Drop a peer's advertisements, and leave a tombstone no earlier write of them can pass."""
        with self._lock:
            self._sync()
            now = time.time()
            stamp = now_micros()
            current = self._remote.pop(peer_id, {})
            result = BulkResult(removed=len(current))
            ops = Ops()
            ops.add(["D", "", stamp, self.keys.peer_tomb(peer_id), self._ttl_ms, REMOVED])
            for register_id in current:
                ops.add(["D", self.keys.remote(peer_id, register_id), stamp, "", 0, REMOVED])
            self._run(ops)
            self._peer_tombstones[peer_id] = Tombstone(stamp, now + self.ttl)
            self._changed()
            self._rerender_if_served()
            return result

    # ------------------------------------------------------------------ reading
    def _expire(self) -> None:
        """Drop entries past their TTL, after asking Redis whether another process refreshed them."""
        now = time.time()
        if now < self._expiry_horizon:  # nothing can have expired yet: skip the scan (hot path)
            return
        expired_local = [rid for rid, entry in self._local.items() if entry.expires_at <= now]
        expired_remote = [
            (peer_id, rid)
            for peer_id, entries in self._remote.items()
            for rid, e in entries.items()
            if e.expires_at <= now
        ]
        if not expired_local and not expired_remote:
            self._expiry_horizon = self._expiry_bound(now)
            return
        keys = [self.keys.local(rid) for rid in expired_local] + [self.keys.remote(p, r) for p, r in expired_remote]
        fetched = self._redis(lambda: self._io.fetch(keys))
        if fetched is None:
            for rid in expired_local:
                del self._local[rid]
            for peer_id, rid in expired_remote:
                del self._remote[peer_id][rid]
        else:
            for key, (raw, pttl) in zip(keys, fetched, strict=True):
                self._absorb(key, raw if pttl > 0 else None, now + max(pttl, 0) / 1000, verified=True)
        for peer_id in [peer_id for peer_id, entries in self._remote.items() if not entries]:
            del self._remote[peer_id]
        self._expiry_horizon = self._expiry_bound(now)
        self._changed()

    def _expiry_bound(self, now: float) -> float:
        # Entries written from now on live at least one TTL; entries taken from Redis lower the bound.
        return min(self._next_expiry(), now + self.ttl)

    def _next_expiry(self) -> float:
        soonest = min(map(_EXPIRES_AT, self._local.values()), default=float("inf"))
        for entries in self._remote.values():
            soonest = min(soonest, min(map(_EXPIRES_AT, entries.values()), default=soonest))
        return soonest

    def _read(self) -> None:
        self._sync()
        self._expire()

    def local_advertisement(self, register_id: str) -> Entry | None:
        with self._lock:
            self._read()
            return self._local.get(register_id)

    def local_advertisements(self) -> list[Entry]:
        with self._lock:
            self._read()
            return list(self._local.values())

    def remote_advertisements(self, peer_id: str | None = None) -> list[Entry]:
        with self._lock:
            self._read()
            peers = [peer_id] if peer_id is not None else list(self._remote)
            return [entry for pid in peers for entry in self._remote.get(pid, {}).values()]

    def remote_count(self) -> int:
        with self._lock:
            self._read()
            return sum(len(entries) for entries in self._remote.values())

    def available(self) -> list[dict[str, Any]]:
        """Local public ads and remote ads grouped by register (ARCHITECTURE §4)."""
        with self._lock:
            self._read()
            return aggregate(self._local, self._remote)

    def available_json(self) -> bytes:
        """The rendered list, cached until the mirror changes or an entry is due to expire.

        While a bulk write holds the store (a full sync being applied), readers get the complete
        rendering of the mirror as it stands (the version a write bumps once it is done) instead of
        waiting: reconciliation must not slow the list down, and no read misses a finished write.
        A catch-up with other processes' changes is waited for (milliseconds): a read after it
        shows them.
        """
        if not self._lock.acquire(blocking=False):
            body = self._rendering.fresh(self._version) if self._writing_bulk else None
            if body is not None:
                self._rendering.read = True
                return body
            self._lock.acquire()
        try:
            self._read()
            body = self._render()
            self._rendering.read = True
            return body
        finally:
            self._lock.release()

    def _patch_refreshed(self) -> None:
        """Patch the refreshes still missing from the rendering into it (or have it made again)."""
        self._refresh_unpatched = False
        if not self._rendering.patch_refreshed(self._version, self._next_expiry(), self._local):
            self._changed()

    def _render(self) -> bytes:
        if self._refresh_unpatched:
            self._patch_refreshed()
        body = self._rendering.fresh(self._version)
        if body is None:
            with gc_paused():  # a row dict per register: nothing cyclic for the collector to find
                body = self._rendering.render(self._version, self._next_expiry(), self._local, self._remote)
            if self._rendering.rows >= _RELEASE_AFTER_ROWS:
                # The last rows freed wait on the free lists, scattered over the heap, and would keep
                # ~30 MiB of it at 100,000 (188 -> 220 MiB after a render without this). In a web process,
                # whose start-up objects are frozen, emptying them costs ~3 ms against a ~0.3 s render.
                drop_free_lists()
        return body

    def _rerender_if_served(self) -> None:
        """After a write, render for the readers now (under the writer's lock) rather than on their time."""
        if self._rendering.served:
            self._render()

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._sync()
            state = self._full_sync
            return {
                "store": "degraded" if self.degraded else "ok",
                "degradedSince": format_seconds(self._breaker.degraded_since),
                "lastError": self._breaker.last_error or None,
                "journalLength": len(self._journal),
                "journalDropped": self._journal.dropped,
                "localAdvertisements": len(self._local),
                "remoteAdvertisements": sum(len(entries) for entries in self._remote.values()),
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
