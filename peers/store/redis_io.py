"""Everything the store says to Redis: key names, the two scripts, batches of operations.

`commit.lua` applies one batch of conditional writes atomically and announces what changed on
a change stream; `fetch.lua` reads entries in bulk (by key, or by SCAN page). Nothing here
decides anything: the façade plans, this module carries the plan.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import redis

_COMMIT_SCRIPT = (Path(__file__).with_name("commit.lua")).read_text()
_FETCH_SCRIPT = (Path(__file__).with_name("fetch.lua")).read_text()

Arg = bytes | str | int
# A page of a scan: when it was asked for, keys, values ("" when gone), remaining TTLs in ms
# (only keys under the pool's prefixes).
Page = tuple[float, list[str], list[str], list[int]]
_RESULT_OPS = frozenset({"S", "D", "M"})  # opcodes for which commit.lua returns one result
# Opcodes that return one result per register they name: a refresh (T, ids from its fourth
# argument on) and a bulk's upserts (U, an (id, sua, value) triple each from its seventh on).
_RESULTS_PER_ITEM = {"T": lambda op: len(op) - 3, "U": lambda op: (len(op) - 6) // 3}


def writes_in(ops: Sequence[Sequence[str]]) -> int:
    """How many writes operations carry: one each, or one per item for those that name several (T, U)."""
    total = 0
    for op in ops:
        per_item = _RESULTS_PER_ITEM.get(op[0])
        total += 1 if per_item is None else max(1, per_item(op))
    return total


# Where each opcode keeps its TTL in milliseconds (a journal replay shortens it by the time spent).
TTL_INDEX = {"S": 4, "U": 3, "D": 4, "A": 2, "T": 2, "H": 2}
FETCH_PAGE = 10_000


class Keys:
    """Key names under one prefix (`REDIS_KEY_PREFIX`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # What a start-up scan takes into the mirror.
        self.pool_prefixes = tuple(f"{prefix}:{kind}:" for kind in ("ad", "tomb", "ptomb", "meta"))
        self.generation = f"{prefix}:gen"
        self.changes = f"{prefix}:changes"
        self.epoch = f"{prefix}:epoch"
        self.meta = f"{prefix}:meta:fullsync"

    @property
    def bookkeeping(self) -> list[str]:
        return [self.generation, self.changes, self.epoch]

    def local(self, register_id: str) -> str:
        return f"{self.prefix}:ad:l:{register_id}"

    def remote(self, peer_id: str, register_id: str) -> str:
        return f"{self.prefix}:ad:r:{peer_id}:{register_id}"

    def tomb(self, register_id: str) -> str:
        return f"{self.prefix}:tomb:{register_id}"

    def peer_tomb(self, peer_id: str) -> str:
        return f"{self.prefix}:ptomb:{peer_id}"

    def mark(self, snapshot_at: int) -> str:
        # ("marks", not "mark": a set under the old name, left by an older version, is never read as text.)
        return f"{self.prefix}:marks:{snapshot_at}"

    def mark_counts(self, snapshot_at: int) -> str:
        return f"{self.prefix}:marks:{snapshot_at}:counts"

    def parse(self, key: str) -> tuple[str, ...]:
        """`('l', rid)`, `('r', peer, rid)`, `('tomb', rid)`, `('ptomb', peer)`, `('meta',)` or `()`."""
        parts = key[len(self.prefix) + 1 :].split(":")
        kind = parts[0]
        if kind == "ad" and len(parts) == 3 and parts[1] == "l":
            return ("l", parts[2])
        if kind == "ad" and len(parts) == 4 and parts[1] == "r":
            return ("r", parts[2], parts[3])
        if kind in ("tomb", "ptomb") and len(parts) == 2:
            return (kind, parts[1])
        if kind == "meta":
            return ("meta",)
        return ()


class Ops:
    """A batch of operations for `commit.lua`, with what the mirror does once each one lands."""

    def __init__(self) -> None:
        self.ops: list[list[str]] = []
        self.callbacks: list[Callable[[Any], None] | None] = []

    def __len__(self) -> int:
        return len(self.ops)

    def add(self, args: Sequence[Arg], on_result: Callable[[Any], None] | None = None) -> None:
        # Every argument travels as a string: Lua numbers would lose digits of microsecond stamps.
        self.ops.append([arg if isinstance(arg, str) else str(arg) for arg in args])
        self.callbacks.append(on_result)

    def add_strings(self, args: list[str], on_result: Callable[[Any], None] | None = None) -> None:
        """`add` for arguments that are all strings already (the hot path of a bulk: no conversion)."""
        self.ops.append(args)
        self.callbacks.append(on_result)

    def extend(self, other: Ops) -> None:
        self.ops.extend(other.ops)
        self.callbacks.extend(other.callbacks)

    def chunks(self, size: int, header: list[str] | None = None) -> Iterator[Ops]:
        """Short script calls keep Redis responsive to the other processes' reads.

        `header` (a guard, say) opens every call, so each one is checked on its own.
        """
        for start in range(0, len(self.ops), size):
            part = Ops()
            part.ops, part.callbacks = self.ops[start : start + size], self.callbacks[start : start + size]
            if header is not None:
                part.ops.insert(0, header)
                part.callbacks.insert(0, None)
            yield part

    def encode(self) -> bytes:
        return orjson.dumps(self.ops)

    def deliver(self, results: bytes | None) -> None:
        """Hand each op its result (one digit each); None means it was journaled (-1 to the callbacks).

        An op with a result per item (T, U) gets the digits of all its items as bytes (None when journaled).
        """
        position = 0
        for op, callback in zip(self.ops, self.callbacks, strict=True):
            per_item = _RESULTS_PER_ITEM.get(op[0])
            if per_item is not None:
                count = per_item(op)
                digits = None if results is None else results[position : position + count]
                position += count
                if callback is not None:
                    callback(digits)
            elif op[0] in _RESULT_OPS:
                result = results[position] - 48 if results is not None else -1  # ASCII digit to int
                position += 1
                if callback is not None:
                    callback(result)


class CommitReply:
    __slots__ = ("entry", "generation", "previous", "results", "status", "stored")

    def __init__(self, reply: list[Any]) -> None:
        self.status = reply[0].decode()
        ok = self.status == "ok"
        self.generation = int(reply[1]) if ok else 0
        self.stored = reply[1]  # the epoch (status "epoch") or the newer snapshot (status "stale")
        self.results: bytes | None = reply[2] if ok else None
        # The change-stream entry this batch added; empty when it changed nothing.
        self.entry: bytes = reply[3] if ok and len(reply) > 3 else b""
        # The stream's last entry before it: b"0-0" when the stream was empty, b"" (no place in a stream)
        # when the reply does not say, so that the writer never takes its entry as seen on faith.
        self.previous: bytes = (reply[4] or b"0-0") if ok and len(reply) > 4 else b""


class RedisIO:
    """One client and its scripts."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._commit = client.register_script(_COMMIT_SCRIPT)
        self._fetch = client.register_script(_FETCH_SCRIPT)

    def commit(self, epoch: str, bookkeeping_ttl_ms: int, batch: bytes) -> CommitReply:
        """Apply one encoded batch; epoch "" accepts any (recovery, after it set the epoch)."""
        return CommitReply(self._commit(keys=self.keys.bookkeeping, args=[epoch, bookkeeping_ttl_ms, batch]))

    def establish_epoch(self, candidate: str, ttl_ms: int) -> str:
        pipe = self.client.pipeline(transaction=False)
        pipe.set(self.keys.epoch, candidate, nx=True, px=ttl_ms)
        pipe.get(self.keys.epoch)
        _, current = pipe.execute()
        return current.decode() if current else candidate

    def scan(self) -> Iterator[Page]:
        """Every pool entry in Redis (no KEYS, no index), a page at a time."""
        for asked_at, raw in self.scan_pages():
            yield self.parse_page(asked_at, raw)

    def read_pool(self, epoch: tuple[str, int] | None = None) -> PoolRead:
        """Start reading the whole pool on a thread of its own (see `PoolRead`)."""
        return PoolRead(self, epoch)

    def scan_pages(self) -> Iterator[tuple[float, bytes]]:
        """The scan's pages as `fetch.lua` encodes them (one JSON document each), each with the
        moment it was asked for (its TTLs count from no earlier)."""
        cursor = b"0"
        while True:
            asked_at = time.time()
            cursor, page = self._fetch(args=["scan", cursor, f"{self.keys.prefix}:*", FETCH_PAGE])
            yield asked_at, page
            if cursor == b"0":
                return

    def parse_page(self, asked_at: float, raw: bytes) -> Page:
        page = orjson.loads(raw)
        keys, values, ttls = page["k"], page["v"], page["t"]
        if not all(key.startswith(self.keys.pool_prefixes) for key in keys):
            kept = [i for i, key in enumerate(keys) if key.startswith(self.keys.pool_prefixes)]
            keys, values, ttls = [keys[i] for i in kept], [values[i] for i in kept], [ttls[i] for i in kept]
        return asked_at, keys, values, ttls

    def fetch(self, keys: Sequence[bytes | str]) -> list[tuple[bytes | None, int]]:
        """Value and remaining TTL (ms) of each key, in one script call per 10,000 keys."""
        names = [key.decode() if isinstance(key, bytes) else key for key in keys]
        fetched: list[tuple[bytes | None, int]] = []
        for start in range(0, len(names), FETCH_PAGE):
            reply = orjson.loads(self._fetch(args=["keys", orjson.dumps(names[start : start + FETCH_PAGE])]))
            fetched.extend(
                (value.encode() if value else None, int(ttl)) for value, ttl in zip(reply["v"], reply["t"], strict=True)
            )
        return fetched

    def head(self) -> tuple[bytes | None, int, list[Any]]:
        """Epoch, generation and the last change-stream entry, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.epoch)
        pipe.get(self.keys.generation)
        pipe.xrevrange(self.keys.changes, count=1)
        epoch, generation, last = pipe.execute()
        return epoch, int(generation or 0), last

    def changes_since(self, stream_id: bytes) -> tuple[bytes | None, int, list[Any]]:
        """Epoch, generation and up to 500 change-stream entries after `stream_id`."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.epoch)
        pipe.get(self.keys.generation)
        pipe.xrange(self.keys.changes, min=b"(" + stream_id, count=500)
        epoch, generation, entries = pipe.execute()
        return epoch, int(generation or 0), entries

    def await_change(self, stream_id: bytes, block_ms: int) -> bytes | None:
        """The id of the change stream's first entry after `stream_id`, waiting for one up to `block_ms`
        (None: none came)."""
        reply: Any = self.client.xread({self.keys.changes: stream_id}, count=1, block=max(1, block_ms))
        if not reply:
            return None
        _, entries = reply[0]
        entry_id: bytes = entries[0][0]
        return entry_id

    def marks(self, snapshot_at: int) -> tuple[set[str], dict[str, int]]:
        """The registers a full sync's earlier requests listed, and what they counted, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        pipe.get(self.keys.mark(snapshot_at))
        pipe.hgetall(self.keys.mark_counts(snapshot_at))
        members, counts = pipe.execute()
        if isinstance(members, bytes):
            members = members.decode()
        return (
            set(members.split()) if members else set(),
            {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in counts.items()},
        )


def stream_order(entry_id: bytes) -> tuple[int, int]:
    """A change-stream entry id ("milliseconds-sequence") as what orders it."""
    milliseconds, _, sequence = entry_id.partition(b"-")
    return int(milliseconds), int(sequence or 0)


_READ_END = object()
_READ_AHEAD = 16  # pages (10,000 entries each) a start-up read holds ahead of whoever takes them in


class PoolRead:
    """The pool read from Redis on a thread of its own, pages ahead of whoever takes them in.

    Redis works on its own core: while this process takes one page into its mirror (or, at
    start-up, while it is still importing Django) the next pages are already being read. The
    thread only waits on the socket, so it costs the process's other work nothing.

    In order: the epoch (when `epoch` gives a candidate and its TTL: established as
    `RedisIO.establish_epoch` does), the head (read before the first page, so whatever
    changes during the scan is in the change stream after it), then every page of the scan.
    An error (a `RedisError`, say) ends the read; whoever takes the next item gets it raised
    in its own thread.
    """

    def __init__(self, io: RedisIO, epoch: tuple[str, int] | None = None) -> None:
        self.prefix = io.keys.prefix
        self._io = io
        self._epoch = epoch
        # A few pages ahead at most: a pool of millions is never buffered whole.
        self._items: queue.Queue[Any] = queue.Queue(maxsize=_READ_AHEAD)
        self._abandoned = threading.Event()  # the taker stopped taking: the thread ends
        self._thread = threading.Thread(target=self._read, name=f"store-read-{self.prefix}", daemon=True)
        self._thread.start()

    def _put(self, item: Any) -> bool:
        """Hand an item over, waiting while the taker is behind; False once it stopped taking."""
        while not self._abandoned.is_set():
            try:
                self._items.put(item, timeout=1.0)
                return True
            except queue.Full:
                continue
        return False

    def _read(self) -> None:
        try:
            if self._epoch is not None and not self._put(self._io.establish_epoch(*self._epoch)):
                return
            if not self._put(self._io.head()):
                return
            for page in self._io.scan_pages():
                if not self._put(page):
                    return
        except BaseException as exc:  # handed to the taker, who raises it in its own thread
            self._put(exc)
        finally:
            self._put(_READ_END)  # (never waited for in vain: the taker's get has no timeout)

    def _next(self) -> Any:
        item = self._items.get()
        if isinstance(item, BaseException):
            self._abandoned.set()  # the read ended with it: nothing more is taken
            raise item
        return item

    def epoch(self) -> str:
        """The epoch this read established (only when it was given a candidate)."""
        assert self._epoch is not None
        epoch: str = self._next()
        return epoch

    def head(self) -> tuple[bytes | None, int, list[Any]]:
        """As `RedisIO.head`, read before the scan's first page."""
        head: tuple[bytes | None, int, list[Any]] = self._next()
        return head

    def pages(self) -> Iterator[Page]:
        """The scan's pages, parsed here (in the taker's thread) as they arrive. A taker that stops
        early (it failed on a page) releases the thread, which reads no further."""
        try:
            while (item := self._next()) is not _READ_END:
                asked_at, raw = item
                yield self._io.parse_page(asked_at, raw)
        finally:
            self._abandoned.set()
