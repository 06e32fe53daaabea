"""The Peer Service's pool of register advertisements: Redis with a TTL, mirrored in memory.

Decisions (ordering, idempotence, mark-and-sweep, the mass-removal guard) are made once,
in Python, against the in-memory mirror. The resulting writes go to Redis in one script
call per batch (`commit.lua`), each conditional on `sourceUpdatedAt`, so processes that
share Redis converge whatever the order of their writes. Other processes learn about
changes from a change stream (a generation counter tells whether anything changed).

When Redis fails, a circuit breaker stops calling it: the store keeps answering from
memory and journals its writes. A background thread notices recovery, replays the
journal and writes every live entry back with its remaining TTL (Redis may have come
back empty), then reloads to converge with the other processes.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import orjson
import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from sorcha_site.memory import gc_paused

logger = logging.getLogger(__name__)

T = TypeVar("T")

_COMMIT_SCRIPT = (Path(__file__).with_name("commit.lua")).read_text()
_FETCH_SCRIPT = (Path(__file__).with_name("fetch.lua")).read_text()
# Bookkeeping keys (generation, change stream, epoch, full-sync state) outlive advertisements.
_BOOKKEEPING_TTL_S = 86_400.0
_MASS_REMOVAL_MIN = 5


class StaleFullSync(Exception):
    """A full sync built from a snapshot older than the last one applied."""

    def __init__(self, snapshot_at: int, last_snapshot_at: int) -> None:
        self.snapshot_at = snapshot_at
        self.last_snapshot_at = last_snapshot_at
        super().__init__(
            f"snapshotAt {format_micros(snapshot_at)} is older than the last applied full sync "
            f"({format_micros(last_snapshot_at)}); a newer full sync has already been applied"
        )


def now_micros() -> int:
    return time.time_ns() // 1000


def to_micros(moment: datetime) -> int:
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def format_micros(micros: int | None) -> str | None:
    if micros is None:
        return None
    return datetime.fromtimestamp(micros / 1_000_000, tz=UTC).isoformat().replace("+00:00", "Z")


def format_seconds(seconds: float | None) -> str | None:
    return None if seconds is None else format_micros(int(seconds * 1_000_000))


@dataclass(slots=True)
class AdvertisementInput:
    """One advertisement as a source states it. Unset fields keep their stored value."""

    register_id: str
    is_public: bool = True
    name: str | None = None
    description: str | None = None
    latest_version: int | None = None
    latest_docket_version: int | None = None
    is_full_replica: bool | None = None
    source_updated_at: int | None = None  # microseconds since the epoch, the source's clock


@dataclass(slots=True)
class Entry:
    """An advertisement held in the pool (local when `peer_id` is None)."""

    register_id: str
    peer_id: str | None
    source_updated_at: int
    fields: dict[str, Any]
    value: str  # the encoded form stored in Redis; equality of values is idempotence
    refreshed_at: float
    expires_at: float
    verified: bool

    def as_dict(self) -> dict[str, Any]:
        return {
            "registerId": self.register_id,
            "peerId": self.peer_id,
            "isPublic": True,
            **self.fields,
            "sourceUpdatedAt": format_micros(self.source_updated_at) if self.peer_id is None else None,
            "refreshedAt": format_seconds(self.refreshed_at),
            "expiresAt": format_seconds(self.expires_at),
            "verified": self.verified,
        }


@dataclass(slots=True)
class Tombstone:
    source_updated_at: int
    expires_at: float


@dataclass(slots=True)
class BulkResult:
    processed: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    held: int = 0
    stale: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "processed": self.processed,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "held": self.held,
            "stale": self.stale,
        }

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass(slots=True)
class FullSyncState:
    """What the store remembers of full syncs: the stale check and the held removals."""

    last_snapshot_at: int = 0
    last_applied_at: float | None = None
    last_result: dict[str, int] = field(default_factory=dict)
    held_snapshot_at: int | None = None
    held_ids: frozenset[str] = frozenset()

    def encode(self) -> str:
        body = {
            "lastSnapshotAt": self.last_snapshot_at,
            "lastAppliedAt": self.last_applied_at,
            "lastResult": self.last_result,
            "heldSnapshotAt": self.held_snapshot_at,
            "heldIds": sorted(self.held_ids),
        }
        return f"{self.last_snapshot_at}|{orjson.dumps(body).decode()}"

    @classmethod
    def decode(cls, raw: str) -> FullSyncState:
        body = orjson.loads(raw.split("|", 1)[1])
        return cls(
            last_snapshot_at=int(body["lastSnapshotAt"]),
            last_applied_at=body.get("lastAppliedAt"),
            last_result=dict(body.get("lastResult") or {}),
            held_snapshot_at=body.get("heldSnapshotAt"),
            held_ids=frozenset(body.get("heldIds") or ()),
        )


def encode_value(source_updated_at: int, fields: dict[str, Any]) -> str:
    """`<sourceUpdatedAt>|<json>`: the script compares the number without decoding the JSON."""
    return f"{source_updated_at}|{orjson.dumps(fields).decode()}"


def decode_value(raw: str) -> tuple[int, dict[str, Any]]:
    stamp, _, body = raw.partition("|")
    return int(stamp), orjson.loads(body)


_DEFAULT_FIELDS: dict[str, Any] = {
    "name": "",
    "description": "",
    "latestVersion": 0,
    "latestDocketVersion": 0,
    "isFullReplica": True,
}


def merged_fields(advertisement: AdvertisementInput, current: dict[str, Any] | None) -> dict[str, Any]:
    base = current or _DEFAULT_FIELDS
    a = advertisement
    return {
        "name": base["name"] if a.name is None else a.name,
        "description": base["description"] if a.description is None else a.description,
        "latestVersion": base["latestVersion"] if a.latest_version is None else a.latest_version,
        "latestDocketVersion": base["latestDocketVersion"]
        if a.latest_docket_version is None
        else a.latest_docket_version,
        "isFullReplica": base["isFullReplica"] if a.is_full_replica is None else a.is_full_replica,
    }


Arg = bytes | str | int
_RESULT_OPS = frozenset({"S", "D", "M"})  # opcodes for which commit.lua returns a result


class _Ops:
    """A batch of operations for `commit.lua`, with what the mirror does once each one lands."""

    def __init__(self) -> None:
        self.ops: list[list[str]] = []
        self.callbacks: list[Callable[[int], None] | None] = []

    def add(self, args: Sequence[Arg], on_result: Callable[[int], None] | None = None) -> None:
        # Every argument travels as a string: Lua numbers would lose digits of microsecond stamps.
        self.ops.append([arg if isinstance(arg, str) else str(arg) for arg in args])
        self.callbacks.append(on_result)

    def extend(self, other: _Ops) -> None:
        self.ops.extend(other.ops)
        self.callbacks.extend(other.callbacks)

    def chunks(self, size: int) -> Iterator[_Ops]:
        """Short script calls keep Redis responsive to the other processes' reads."""
        for start in range(0, len(self.ops), size):
            part = _Ops()
            part.ops, part.callbacks = self.ops[start : start + size], self.callbacks[start : start + size]
            yield part

    def encode(self) -> bytes:
        return orjson.dumps(self.ops)

    def deliver(self, results: bytes | None) -> None:
        """Hand each op its result (one digit each); None means it was journaled (-1 to the callbacks)."""
        replies = iter(results or b"")
        for op, callback in zip(self.ops, self.callbacks, strict=True):
            if op[0] in _RESULT_OPS:
                result = next(replies) - 48 if results is not None else -1  # ASCII digit to int
                if callback is not None:
                    callback(result)


class AdvertisementStore:
    """The unified pool of local and remote advertisements (FR-001, FR-002, FR-010)."""

    def __init__(
        self,
        redis_url: str,
        prefix: str,
        ttl: float,
        *,
        breaker_cooldown: float = 1.0,
        socket_timeout: float = 0.5,
        commit_batch: int = 2_000,
        start_watcher: bool = True,
    ) -> None:
        self.prefix = prefix
        self._pool_prefixes = tuple(f"{prefix}:{kind}:" for kind in ("ad", "tomb", "meta"))
        self.ttl = float(ttl)
        self.breaker_cooldown = breaker_cooldown
        self.commit_batch = commit_batch
        self.client = redis.Redis.from_url(
            redis_url,
            socket_timeout=socket_timeout,
            socket_connect_timeout=socket_timeout,
            retry=Retry(NoBackoff(), 0),
            health_check_interval=0,
        )
        self._commit = self.client.register_script(_COMMIT_SCRIPT)
        self._fetch_script = self.client.register_script(_FETCH_SCRIPT)
        self._lock = threading.RLock()
        self._local: dict[str, Entry] = {}
        self._remote: dict[str, dict[str, Entry]] = {}
        self._tombstones: dict[str, Tombstone] = {}
        self._full_sync = FullSyncState()
        self._marks: dict[int, set[str]] = {}  # full-sync marks kept in memory while degraded
        self._journal: list[bytes] = []  # encoded batches not yet in Redis, in order
        self._epoch = ""
        self._generation = 0
        self._stream_id = b"0-0"
        self._degraded_since: float | None = None
        self._breaker_open_until = 0.0
        self._last_error = ""
        self._version = 0  # bumped on every change to the mirror; keys the rendered available list
        self._available_cache: tuple[int, float, bytes] | None = None
        # No entry expires before this moment (only ever lowered by entries taken from Redis).
        self._expiry_horizon = 0.0
        # The rows behind that rendering, by register id, so a refresh can patch them in place.
        self._available_rows: tuple[int, list[dict[str, Any]], dict[str, dict[str, Any]]] | None = None
        self._stop = threading.Event()
        self._load_at_start()
        self._watcher: threading.Thread | None = None
        if start_watcher:
            self._watcher = threading.Thread(target=self._watch, name=f"store-watcher-{prefix}", daemon=True)
            self._watcher.start()

    # ------------------------------------------------------------------ keys
    def _key(self, *parts: str) -> str:
        return ":".join((self.prefix, *parts))

    def local_key(self, register_id: str) -> str:
        return self._key("ad", "l", register_id)

    def remote_key(self, peer_id: str, register_id: str) -> str:
        return self._key("ad", "r", peer_id, register_id)

    def tomb_key(self, register_id: str) -> str:
        return self._key("tomb", register_id)

    @property
    def _meta_key(self) -> str:
        return self._key("meta", "fullsync")

    def _mark_key(self, snapshot_at: int) -> str:
        return self._key("mark", str(snapshot_at))

    @property
    def _bookkeeping_keys(self) -> list[str]:
        return [self._key("gen"), self._key("changes"), self._key("epoch")]

    @property
    def _ttl_ms(self) -> int:
        return max(1, int(self.ttl * 1000))

    @property
    def _bookkeeping_ttl_ms(self) -> int:
        return int(max(_BOOKKEEPING_TTL_S, 10 * self.ttl) * 1000)

    # ------------------------------------------------------------------ health
    @property
    def degraded(self) -> bool:
        return self._degraded_since is not None

    def _redis(self, call: Callable[[], T]) -> T | None:
        """Run one Redis interaction; on failure open the breaker and return None."""
        if self.degraded and time.monotonic() < self._breaker_open_until:
            return None
        if self.degraded:
            return None  # the watcher owns recovery; requests never wait on a broken Redis
        try:
            return call()
        except redis.RedisError as exc:
            self._open_breaker(exc)
            return None

    def _open_breaker(self, exc: Exception) -> None:
        if self._degraded_since is None:
            self._degraded_since = time.time()
            logger.warning("event=store_degraded prefix=%s error=%r", self.prefix, exc)
        self._last_error = repr(exc)
        self._breaker_open_until = time.monotonic() + self.breaker_cooldown

    def _watch(self) -> None:
        """Notice Redis coming back (or coming back empty) without waiting for a request."""
        while not self._stop.wait(self.breaker_cooldown):
            try:
                with self._lock:
                    if self.degraded:
                        self._try_recover()
                    else:
                        self._redis(self._catch_up)
                    self._prune_tombstones()
            except Exception:
                logger.exception("event=store_watcher_failed prefix=%s", self.prefix)

    def _prune_tombstones(self) -> None:
        now = time.time()
        for register_id in [rid for rid, tomb in self._tombstones.items() if tomb.expires_at <= now]:
            del self._tombstones[register_id]

    def close(self) -> None:
        self._stop.set()
        if self._watcher is not None:
            self._watcher.join(timeout=5)
        self.client.close()

    # ------------------------------------------------------------------ loading and catching up
    def _load_at_start(self) -> None:
        with self._lock:
            try:
                self._establish_epoch()
                self._reload(initial=True)
            except redis.RedisError as exc:
                self._open_breaker(exc)
                logger.warning("event=store_start_without_redis prefix=%s error=%r", self.prefix, exc)

    def _establish_epoch(self) -> None:
        epoch_key = self._bookkeeping_keys[2]
        candidate = secrets.token_hex(8)
        pipe = self.client.pipeline(transaction=False)
        pipe.set(epoch_key, candidate, nx=True, px=self._bookkeeping_ttl_ms)
        pipe.get(epoch_key)
        _, current = pipe.execute()
        self._epoch = current.decode() if current else candidate

    def _scan(self) -> Iterator[tuple[str, bytes | None, int]]:
        """Every pool entry in Redis (no KEYS, no index): key, value and remaining TTL in ms."""
        cursor = "0"
        while True:
            page = orjson.loads(self._fetch_script(args=["scan", cursor, f"{self.prefix}:*", 10_000]))
            for key, value, ttl in zip(page["k"], page["v"], page["t"], strict=True):
                if key.startswith(self._pool_prefixes):
                    yield key, value.encode() if value else None, int(ttl)
            cursor = page["c"]
            if cursor == "0":
                return

    def _fetch(self, keys: Sequence[bytes | str]) -> list[tuple[bytes | None, int]]:
        """Value and remaining TTL (ms) of each key, in one script call per 10,000 keys."""
        names = [key.decode() if isinstance(key, bytes) else key for key in keys]
        fetched: list[tuple[bytes | None, int]] = []
        for start in range(0, len(names), 10_000):
            reply = orjson.loads(self._fetch_script(args=["keys", orjson.dumps(names[start : start + 10_000])]))
            fetched.extend(
                (value.encode() if value else None, int(ttl)) for value, ttl in zip(reply["v"], reply["t"], strict=True)
            )
        return fetched

    @gc_paused()
    def _reload(self, initial: bool) -> None:
        """Rebuild the mirror from Redis (a start-up load, or a gap in the change stream)."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self._bookkeeping_keys[0])
        pipe.xrevrange(self._bookkeeping_keys[1], count=1)
        generation_raw, last = pipe.execute()
        previous_local, previous_remote = self._local, self._remote
        self._local, self._remote, self._tombstones = {}, {}, {}
        now = time.time()
        for key, raw, pttl in self._scan():
            if raw is not None and pttl > 0:
                self._absorb(key, raw, now + pttl / 1000, verified=None)
        if not initial:
            # Entries equal to what this process held keep their verification; others were written since.
            for register_id, entry in self._local.items():
                old = previous_local.get(register_id)
                entry.verified = old.verified if old is not None and old.value == entry.value else True
            for peer_id, entries in self._remote.items():
                for register_id, entry in entries.items():
                    old = previous_remote.get(peer_id, {}).get(register_id)
                    entry.verified = old.verified if old is not None and old.value == entry.value else True
        self._generation = int(generation_raw or 0)
        self._stream_id = last[0][0] if last else b"0-0"
        self._changed()
        logger.info(
            "event=store_loaded prefix=%s local=%d remote=%d initial=%s",
            self.prefix,
            len(self._local),
            sum(len(entries) for entries in self._remote.values()),
            initial,
        )

    def _absorb(self, key: str, stored: bytes | None, expires_at: float, verified: bool | None) -> None:
        """Take one key's current Redis state into the mirror (None: it is gone)."""
        raw = stored.decode() if stored is not None else None
        self._expiry_horizon = min(self._expiry_horizon, expires_at)
        parts = key[len(self.prefix) + 1 :].split(":")
        kind = parts[0]
        if kind == "ad" and parts[1] == "l":
            register_id = parts[2]
            if raw is None:
                self._local.pop(register_id, None)
                return
            stamp, fields = decode_value(raw)
            self._local[register_id] = Entry(
                register_id, None, stamp, fields, raw, expires_at - self.ttl, expires_at, bool(verified)
            )
        elif kind == "ad" and parts[1] == "r":
            peer_id, register_id = parts[2], parts[3]
            if raw is None:
                self._remote.get(peer_id, {}).pop(register_id, None)
                return
            _, fields = decode_value(raw)
            self._remote.setdefault(peer_id, {})[register_id] = Entry(
                register_id, peer_id, 0, fields, raw, expires_at - self.ttl, expires_at, bool(verified)
            )
        elif kind == "tomb":
            if raw is None:
                self._tombstones.pop(parts[1], None)
            else:
                self._tombstones[parts[1]] = Tombstone(int(raw), expires_at)
        elif kind == "meta" and raw is not None:
            state = FullSyncState.decode(raw)
            # A full sync seen while running (not at start-up load) confirmed every local ad it did not hold.
            if verified and state.last_applied_at and state.last_applied_at != self._full_sync.last_applied_at:
                self._refresh_local_after_full_sync(state)
            self._full_sync = state

    def _refresh_local_after_full_sync(self, state: FullSyncState) -> None:
        """A full sync refreshed every local ad it did not hold back (the source confirmed them)."""
        assert state.last_applied_at is not None
        expires_at = state.last_applied_at + self.ttl
        for register_id, entry in self._local.items():
            if register_id not in state.held_ids:
                entry.verified = True
                if expires_at > entry.expires_at:
                    entry.expires_at = expires_at
                    entry.refreshed_at = state.last_applied_at

    def _catch_up(self) -> None:
        """Apply what other processes changed since this one last looked (one round trip when nothing did)."""
        gen_key, stream_key, epoch_key = self._bookkeeping_keys
        pipe = self.client.pipeline(transaction=False)
        pipe.get(epoch_key)
        pipe.get(gen_key)
        pipe.xrange(stream_key, min=b"(" + self._stream_id, count=500)
        epoch, generation_raw, entries = pipe.execute()
        if epoch is None or epoch.decode() != self._epoch:
            logger.warning("event=store_epoch_changed prefix=%s action=write_back", self.prefix)
            self._recover()
            return
        generation = int(generation_raw or 0)
        if generation == self._generation:
            return
        expected = self._generation + 1
        sequence = [int(fields[b"g"]) for _, fields in entries]
        if not entries or sequence[0] != expected or sequence[-1] != generation:
            self._reload(initial=False)
            return
        keys = list(dict.fromkeys(key for _, fields in entries for key in fields[b"k"].split(b" ")))
        now = time.time()
        for key, (raw, pttl) in zip(keys, self._fetch(keys), strict=True):
            self._absorb(key.decode(), raw if pttl > 0 else None, now + max(pttl, 0) / 1000, verified=True)
        self._generation = generation
        self._stream_id = entries[-1][0]
        if keys == [self._meta_key.encode()]:
            self._patch_rendered_rows()  # a full sync that only refreshed: no need to re-render it all
        else:
            self._changed()

    # ------------------------------------------------------------------ committing
    def _run(self, ops: _Ops) -> None:
        """Send a batch to Redis in short script calls, or journal it while degraded."""
        for part in ops.chunks(self.commit_batch):
            if not self.degraded:
                try:
                    reply = self._commit(
                        keys=self._bookkeeping_keys, args=[self._epoch, self._bookkeeping_ttl_ms, part.encode()]
                    )
                except redis.RedisError as exc:
                    self._open_breaker(exc)
                else:
                    status = reply[0].decode()
                    if status == "epoch":  # Redis lost its data since we last looked: write back, then retry
                        try:
                            self._recover()
                        except redis.RedisError as exc:
                            self._open_breaker(exc)
                        else:
                            self._run(part)
                            continue
                    if status == "stale":
                        raise StaleFullSync(int(part.ops[0][2]), int(reply[1]))
                    part.deliver(reply[2])
                    self._follow_own_generation(int(reply[1]))
                    continue
            self._journal.append(part.encode())
            part.deliver(None)

    def _follow_own_generation(self, generation: int) -> None:
        # Our own changes are already in the mirror; others' (if any slipped in) arrive on the next catch-up.
        if generation == self._generation + 1:
            self._generation = generation
            pipe = self.client.pipeline(transaction=False)
            pipe.xrevrange(self._bookkeeping_keys[1], count=1)
            try:
                (last,) = pipe.execute()
            except redis.RedisError as exc:
                self._open_breaker(exc)
                return
            if last:
                self._stream_id = last[0][0]

    def _changed(self) -> None:
        self._version += 1

    # ------------------------------------------------------------------ recovery
    def _try_recover(self) -> None:
        if time.monotonic() < self._breaker_open_until:
            return
        try:
            self.client.ping()
            self._recover()
        except redis.RedisError as exc:
            self._open_breaker(exc)
            return
        was_degraded_for = time.time() - (self._degraded_since or time.time())
        self._degraded_since = None
        logger.info("event=store_recovered prefix=%s degraded_seconds=%.1f", self.prefix, was_degraded_for)

    def _recover(self) -> None:
        """Replay the journal, write every live entry back with its remaining TTL, then reload."""
        self._establish_epoch()
        journal, self._journal = self._journal, []
        try:
            for batch in journal:
                self._commit(keys=self._bookkeeping_keys, args=["", self._bookkeeping_ttl_ms, batch])
            self._write_back()
        except redis.RedisError:
            self._journal = journal + self._journal
            raise
        self._reload(initial=False)

    def _write_back(self) -> None:
        now = time.time()
        ops = _Ops()
        for entry in self._local.values():
            if entry.expires_at > now:
                ops.add(self._set_args(self.local_key(entry.register_id), entry, entry.expires_at - now))
        for peer_id, entries in self._remote.items():
            for entry in entries.values():
                if entry.expires_at > now:
                    ops.add(self._set_args(self.remote_key(peer_id, entry.register_id), entry, entry.expires_at - now))
        for register_id, tomb in self._tombstones.items():
            if tomb.expires_at > now:
                ops.add(
                    [
                        "D",
                        self.local_key(register_id),
                        tomb.source_updated_at,
                        self.tomb_key(register_id),
                        int((tomb.expires_at - now) * 1000) or 1,
                    ]
                )
        if self._full_sync.last_applied_at is not None:
            ops.add(
                [
                    "M",
                    self._meta_key,
                    self._full_sync.last_snapshot_at,
                    self._full_sync.encode(),
                    self._bookkeeping_ttl_ms,
                ]
            )
        for part in ops.chunks(self.commit_batch):
            self._commit(keys=self._bookkeeping_keys, args=["", self._bookkeeping_ttl_ms, part.encode()])

    def _set_args(self, key: str, entry: Entry, ttl: float, log: bool = True) -> list[bytes | str | int]:
        tomb = self.tomb_key(entry.register_id) if entry.peer_id is None else ""
        return ["S", key, entry.source_updated_at, entry.value, max(1, int(ttl * 1000)), tomb, "1" if log else "0"]

    # ------------------------------------------------------------------ local advertisements
    def _sync(self) -> None:
        """Bring the mirror up to date before deciding anything."""
        if not self.degraded:
            self._redis(self._catch_up)

    def _plan_upsert(self, advertisement: AdvertisementInput, now: float, result: BulkResult, log: bool) -> _Ops:
        ops = _Ops()
        register_id = advertisement.register_id
        stamp = advertisement.source_updated_at if advertisement.source_updated_at is not None else now_micros()
        current = self._local.get(register_id)
        if current is not None and current.expires_at <= now:
            current = None
        tomb = self._tombstones.get(register_id)
        if (tomb is not None and tomb.expires_at > now and tomb.source_updated_at >= stamp) or (
            current is not None and current.source_updated_at > stamp
        ):
            result.stale += 1
            return ops
        fields = merged_fields(advertisement, current.fields if current else None)
        value = encode_value(stamp, fields)
        entry = Entry(register_id, None, stamp, fields, value, now, now + self.ttl, True)

        def landed(outcome: int) -> None:
            if outcome == 0:  # Redis holds something newer than this process knew: take it
                self._refetch([self.local_key(register_id), self.tomb_key(register_id)])
                result.stale += 1
                return
            unchanged = outcome == 2 or (outcome == -1 and current is not None and current.value == value)
            if unchanged and current is not None:
                current.expires_at, current.refreshed_at, current.verified = entry.expires_at, now, True
                result.unchanged += 1
                return
            if current is None:
                result.added += 1
            else:
                result.updated += 1
            self._local[register_id] = entry
            self._tombstones.pop(register_id, None)

        ops.add(self._set_args(self.local_key(register_id), entry, self.ttl, log=log), landed)
        return ops

    def _plan_removal(self, register_id: str, stamp: int | None, now: float, result: BulkResult) -> _Ops:
        ops = _Ops()
        current = self._local.get(register_id)
        if current is not None and stamp is not None and current.source_updated_at > stamp:
            result.stale += 1
            return ops

        def landed(outcome: int) -> None:
            existed = current is not None and current.expires_at > now
            if outcome == 1 or (outcome == -1 and existed):
                result.removed += 1
            elif outcome == 0 and existed:
                self._refetch([self.local_key(register_id)])
            self._local.pop(register_id, None)
            if stamp is not None:
                tomb = self._tombstones.get(register_id)
                if tomb is None or tomb.source_updated_at < stamp:
                    self._tombstones[register_id] = Tombstone(stamp, now + self.ttl)

        ops.add(
            [
                "D",
                self.local_key(register_id),
                -1 if stamp is None else stamp,
                "" if stamp is None else self.tomb_key(register_id),
                self._ttl_ms,
            ],
            landed,
        )
        return ops

    def _refetch(self, keys: list[str]) -> None:
        fetched = self._redis(lambda: self._fetch(keys))
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
            result = self._apply_items(advertisements, log=True)
            self._changed()
            self._rerender_if_served()
            return result, self._local.get(advertisements[-1].register_id)

    def _apply_items(self, advertisements: Iterable[AdvertisementInput], log: bool) -> BulkResult:
        result = BulkResult()
        now = time.time()
        ops = _Ops()
        for advertisement in advertisements:
            result.processed += 1
            if advertisement.is_public:
                ops.extend(self._plan_upsert(advertisement, now, result, log))
            else:
                ops.extend(self._plan_removal(advertisement.register_id, advertisement.source_updated_at, now, result))
        self._run(ops)
        return result

    def apply_bulk(
        self,
        advertisements: Sequence[AdvertisementInput],
        full_sync: bool = False,
        snapshot_at: int | None = None,
    ) -> BulkResult:
        """Bulk advertise (FR-005); with `full_sync` the list is the complete local set (FR-011)."""
        with self._lock, gc_paused():
            self._sync()
            if full_sync:
                snapshot_at = snapshot_at if snapshot_at is not None else now_micros()
                if snapshot_at < self._full_sync.last_snapshot_at:
                    raise StaleFullSync(snapshot_at, self._full_sync.last_snapshot_at)
            try:
                result = self._apply_items(advertisements, log=snapshot_at is None)
                if snapshot_at is not None:
                    listed = {advertisement.register_id for advertisement in advertisements}
                    if full_sync:
                        self._sweep(snapshot_at, listed, result)
                    else:
                        self._mark(snapshot_at, listed)
            finally:
                self._changed()
                self._rerender_if_served()
            return result

    def _mark(self, snapshot_at: int, listed: set[str]) -> None:
        """Chunks of a full sync larger than one request remember what they listed."""
        if self.degraded:
            self._marks.setdefault(snapshot_at, set()).update(listed)
            return
        ops = _Ops()
        ops.add(["A", self._mark_key(snapshot_at), self._ttl_ms, *sorted(listed)])
        self._run(ops)
        if self.degraded:  # the write failed: keep the marks in memory instead
            self._marks.setdefault(snapshot_at, set()).update(listed)

    def _sweep(self, snapshot_at: int, listed: set[str], result: BulkResult) -> None:
        """Mark-and-sweep: remove local ads neither listed by this sync nor changed after its snapshot."""
        marked = set(listed) | self._marks.pop(snapshot_at, set())
        stored_marks = self._redis(lambda: self.client.smembers(self._mark_key(snapshot_at)))
        if stored_marks:
            marked.update(member.decode() if isinstance(member, bytes) else member for member in stored_marks)
        now = time.time()
        live = {rid: entry for rid, entry in self._local.items() if entry.expires_at > now}
        candidates = {
            rid for rid, entry in live.items() if rid not in marked and entry.source_updated_at <= snapshot_at
        }
        previous = self._full_sync
        held: set[str] = set()
        removal = candidates
        if len(candidates) > len(live) / 2 and len(candidates) >= _MASS_REMOVAL_MIN:
            confirmed = (
                candidates & previous.held_ids
                if previous.held_snapshot_at is not None and previous.held_snapshot_at < snapshot_at
                else set()
            )
            removal, held = confirmed, candidates - confirmed
            logger.warning(
                "event=full_sync_removal_held prefix=%s snapshot_at=%s held=%d confirmed=%d local=%d",
                self.prefix,
                format_micros(snapshot_at),
                len(held),
                len(confirmed),
                len(live),
            )
        result.held = len(held)
        state = FullSyncState(
            last_snapshot_at=snapshot_at,
            last_applied_at=now,
            held_snapshot_at=snapshot_at if held else None,
            held_ids=frozenset(held),
        )
        self._commit_sweep(removal, now, result, state)

    def _commit_sweep(self, removal: set[str], now: float, result: BulkResult, state: FullSyncState) -> None:
        snapshot_at = state.last_snapshot_at
        sweep = _Ops()
        sweep.add(["G", self._meta_key, snapshot_at])
        for register_id in sorted(removal):
            sweep.extend(self._plan_removal(register_id, snapshot_at, now, result))
        self._run(sweep)
        state.last_result = result.as_dict()
        record = _Ops()
        record.add(["M", self._meta_key, snapshot_at, state.encode(), self._bookkeeping_ttl_ms])
        record.add(["X", self._mark_key(snapshot_at)])
        self._run(record)
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
        """A peer's complete set of its own public ads replaces what it advertised before."""
        with self._lock:
            self._sync()
            now = time.time()
            result = BulkResult(processed=len(advertisements))
            current = self._remote.get(peer_id, {})
            listed: dict[str, Entry] = {}
            ops = _Ops()
            for advertisement in advertisements:
                existing = current.get(advertisement.register_id)
                fields = merged_fields(advertisement, None)
                value = encode_value(0, fields)
                entry = Entry(advertisement.register_id, peer_id, 0, fields, value, now, now + self.ttl, True)
                listed[advertisement.register_id] = entry
                if existing is not None and existing.value == value:
                    result.unchanged += 1
                elif existing is not None:
                    result.updated += 1
                else:
                    result.added += 1
                ops.add(self._set_args(self.remote_key(peer_id, advertisement.register_id), entry, self.ttl, log=True))
            for register_id in current.keys() - listed.keys():
                result.removed += 1
                ops.add(["D", self.remote_key(peer_id, register_id), -1, "", 0])
            self._run(ops)
            if listed:
                self._remote[peer_id] = listed
            else:
                self._remote.pop(peer_id, None)
            self._changed()
            self._rerender_if_served()
            return result

    def forget_peer(self, peer_id: str) -> BulkResult:
        return self.replace_remote(peer_id, [])

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
        keys = [self.local_key(rid) for rid in expired_local] + [self.remote_key(p, r) for p, r in expired_remote]
        fetched = self._redis(lambda: self._fetch(keys))
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
        soonest = min((entry.expires_at for entry in self._local.values()), default=float("inf"))
        for entries in self._remote.values():
            soonest = min(soonest, min((entry.expires_at for entry in entries.values()), default=soonest))
        return soonest

    def local_advertisement(self, register_id: str) -> Entry | None:
        with self._lock:
            self._sync()
            self._expire()
            return self._local.get(register_id)

    def local_advertisements(self) -> list[Entry]:
        with self._lock:
            self._sync()
            self._expire()
            return list(self._local.values())

    def remote_advertisements(self, peer_id: str | None = None) -> list[Entry]:
        with self._lock:
            self._sync()
            self._expire()
            peers = [peer_id] if peer_id is not None else list(self._remote)
            return [entry for pid in peers for entry in self._remote.get(pid, {}).values()]

    def available(self) -> list[dict[str, Any]]:
        """Local public ads and remote ads grouped by register (ARCHITECTURE §4)."""
        with self._lock:
            self._sync()
            self._expire()
            return self._aggregate()

    def available_json(self) -> bytes:
        """The rendered list, cached until the mirror changes or an entry is due to expire.

        While a writer holds the store (a full sync being applied), readers get the last
        complete rendering instead of waiting: reconciliation must not slow the list down.
        """
        if not self._lock.acquire(blocking=False):
            cached = self._available_cache
            if cached is not None and time.time() < cached[1]:
                return cached[2]
            self._lock.acquire()
        try:
            self._sync()
            self._expire()
            return self._render_available()
        finally:
            self._lock.release()

    def _render_available(self) -> bytes:
        cached = self._available_cache
        if cached is not None and cached[0] == self._version and time.time() < cached[1]:
            return cached[2]
        rows = self._aggregate()
        self._available_rows = (self._version, rows, {row["registerId"]: row for row in rows})
        body = orjson.dumps(rows)
        self._available_cache = (self._version, self._next_expiry(), body)
        return body

    def _patch_rendered_rows(self) -> None:
        """A refresh changes only `lastSeen` and `verified` of local rows: patch them and re-serialise."""
        rendered = self._available_rows
        if rendered is None or rendered[0] != self._version:
            self._changed()
            return
        _, rows, index = rendered
        moments: dict[float, str | None] = {}  # one full sync gives every entry the same moment
        for register_id, entry in self._local.items():
            row = index.get(register_id)
            if row is None or row["peerCount"]:
                self._changed()  # a row that needs aggregating again
                return
            seen = moments.get(entry.refreshed_at)
            if seen is None:
                seen = moments[entry.refreshed_at] = format_seconds(entry.refreshed_at)
            row["lastSeen"] = seen
            row["verified"] = entry.verified
        self._available_cache = (self._version, self._next_expiry(), orjson.dumps(rows))

    def _rerender_if_served(self) -> None:
        """After a write, render for the readers now (under the writer's lock) rather than on their time."""
        if self._available_cache is not None:
            self._render_available()

    def _aggregate(self) -> list[dict[str, Any]]:
        # A banned peer's advertisements are not filtered here: banning forgets them (forget_peer).
        remote_by_register: dict[str, list[Entry]] = {}
        for peer_entries in self._remote.values():
            for register_id, entry in peer_entries.items():
                remote_by_register.setdefault(register_id, []).append(entry)
        moments: dict[float, str | None] = {}  # a bulk refresh gives thousands of entries one moment

        def moment(seconds: float) -> str | None:
            text = moments.get(seconds)
            if text is None:
                text = moments[seconds] = format_seconds(seconds)
            return text

        rows = []
        for register_id, local in self._local.items():
            remote = remote_by_register.pop(register_id, None)
            fields = local.fields
            if remote is None:  # the common case: only this node holds it
                rows.append(
                    {
                        "registerId": register_id,
                        "name": fields["name"],
                        "description": fields["description"],
                        "isPublic": True,
                        "isLocal": True,
                        "peerCount": 0,
                        "fullReplicaPeerCount": 0,
                        "latestVersion": fields["latestVersion"],
                        "latestDocketVersion": fields["latestDocketVersion"],
                        "verified": local.verified,
                        "lastSeen": moment(local.refreshed_at),
                    }
                )
            else:
                rows.append(self._row(register_id, local, remote, moment))
        for register_id, remote in remote_by_register.items():
            rows.append(self._row(register_id, None, remote, moment))
        rows.sort(key=lambda row: (row["name"].lower(), row["registerId"]))
        return rows

    @staticmethod
    def _row(
        register_id: str, local: Entry | None, remote: list[Entry], moment: Callable[[float], str | None]
    ) -> dict[str, Any]:
        entries = [local, *remote] if local is not None else remote
        primary = local or max(remote, key=lambda e: (e.fields["latestVersion"], e.refreshed_at))
        return {
            "registerId": register_id,
            "name": primary.fields["name"],
            "description": primary.fields["description"],
            "isPublic": True,
            "isLocal": local is not None,
            "peerCount": len(remote),
            "fullReplicaPeerCount": sum(1 for e in remote if e.fields["isFullReplica"]),
            "latestVersion": max(e.fields["latestVersion"] for e in entries),
            "latestDocketVersion": max(e.fields["latestDocketVersion"] for e in entries),
            "verified": local.verified if local is not None else any(e.verified for e in remote),
            "lastSeen": moment(max(e.refreshed_at for e in entries)),
        }

    def status(self) -> dict[str, Any]:
        with self._lock:
            self._sync()
            state = self._full_sync
            return {
                "store": "degraded" if self.degraded else "ok",
                "degradedSince": format_seconds(self._degraded_since),
                "lastError": self._last_error or None,
                "journalLength": len(self._journal),
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
            }


_store: AdvertisementStore | None = None
_store_lock = threading.Lock()


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
                    breaker_cooldown=settings.STORE_BREAKER_COOLDOWN,
                    socket_timeout=settings.STORE_SOCKET_TIMEOUT,
                )
    return _store


def reset_store() -> None:
    """Drop this process's store (tests that change settings or restart Redis)."""
    global _store
    with _store_lock:
        if _store is not None:
            _store.close()
        _store = None
