"""Everything the store says to Redis: key names, the two scripts, batches, the change log.

`commit.lua` applies one batch of conditional writes atomically and appends what it changed to
the change log (a stream whose every entry names the one before it); `fetch.lua` reads entries
in bulk (by key, or by SCAN page). Nothing here decides anything: `decide` plans, this module
carries the plan.
"""

from __future__ import annotations

import json
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import orjson
import redis

_COMMIT_SCRIPT = (Path(__file__).with_name("commit.lua")).read_text()
_FETCH_SCRIPT = (Path(__file__).with_name("fetch.lua")).read_text()

Arg = bytes | str | int
# A page of a scan: keys, values ("" when gone), expiries in ms (only keys under the pool's prefixes).
Page = tuple[list[str], list[str], list[int]]
# Opcodes that name several writes: a refresh (T, ids from its fourth argument on) and a bulk's
# upserts (U, an (id, sua, value) triple each from its sixth on).
_WRITES_PER_OP = {"T": lambda op: len(op) - 3, "U": lambda op: (len(op) - 5) // 3}


def writes_in(ops: Sequence[Sequence[str]]) -> int:
    """How many writes operations carry: one each, or one per item for those that name several (T, U)."""
    total = 0
    for op in ops:
        per_item = _WRITES_PER_OP.get(op[0])
        total += 1 if per_item is None else max(1, per_item(op))
    return total


FETCH_PAGE = 10_000


class Keys:
    """Key names under one prefix (`REDIS_KEY_PREFIX`)."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        # What a start-up scan takes into the mirror.
        self.pool_prefixes = tuple(f"{prefix}:{kind}:" for kind in ("ad", "tomb", "ptomb", "meta"))
        self.log = f"{prefix}:log"
        self.meta = f"{prefix}:meta:fullsync"

    def local(self, register_id: str) -> str:
        return f"{self.prefix}:ad:l:{register_id}"

    def remote(self, peer_id: str, register_id: str) -> str:
        return f"{self.prefix}:ad:r:{peer_id}:{register_id}"

    def tomb(self, register_id: str) -> str:
        return f"{self.prefix}:tomb:{register_id}"

    def peer_tomb(self, peer_id: str) -> str:
        return f"{self.prefix}:ptomb:{peer_id}"

    def mark(self, snapshot_at: int) -> str:
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
    """A batch of operations for `commit.lua`, and what the planner expects of each result.

    `labels` holds one character per result the batch will return (see `decide.tally`): what the
    planner counted the write as, should Redis accept it.
    """

    def __init__(self) -> None:
        self.ops: list[list[str]] = []
        self.labels: list[str] = []

    def __len__(self) -> int:
        return len(self.ops)

    def add(self, args: Sequence[Arg], labels: str = "") -> None:
        # Every argument travels as a string: Lua numbers would lose digits of microsecond stamps.
        self.ops.append([arg if isinstance(arg, str) else str(arg) for arg in args])
        self.labels.append(labels)

    def add_strings(self, args: list[str], labels: str = "") -> None:
        """`add` for arguments that are all strings already, kept as the very list given (a planner
        extends a U operation in place)."""
        self.ops.append(args)
        self.labels.append(labels)

    def chunks(self, size: int, header: list[str] | None = None) -> Iterator[Ops]:
        """Short script calls keep Redis responsive to the other processes' reads.

        `header` (a guard, say) opens every call, so each one is checked on its own.
        """
        for start in range(0, len(self.ops), size):
            part = Ops()
            part.ops, part.labels = self.ops[start : start + size], self.labels[start : start + size]
            if header is not None:
                part.ops.insert(0, header)
                part.labels.insert(0, "")
            yield part

    def encode(self) -> bytes:
        return orjson.dumps(self.ops)

    @property
    def expected(self) -> str:
        return "".join(self.labels)


class CommitReply:
    """What one script call did: its results, its log entry and the state of every key it changed."""

    __slots__ = ("entry", "previous", "refreshed", "refreshed_until", "results", "states", "status", "stored")

    def __init__(self, reply: list[Any]) -> None:
        self.status = reply[0].decode()
        ok = self.status == "ok"
        self.stored = reply[1]  # the newer snapshot (status "stale")
        self.results: bytes = reply[1] if ok else b""
        self.entry: bytes = reply[2] if ok else b""  # b"" when the batch changed nothing
        self.previous: bytes = (reply[3] or b"0-0") if ok else b""
        # [key, value (b"" when gone), expiry ms, ...] of every key the batch changed.
        self.states: list[bytes] = reply[4] if ok else []
        self.refreshed: list[str] = reply[5].decode().split() if ok and reply[5] else []
        self.refreshed_until = int(reply[6]) / 1000 if ok else 0.0


class LogEntry:
    """One entry of the change log: the entry before it, the keys it changed, the ids it refreshed."""

    __slots__ = ("id", "keys", "previous", "refreshed", "refreshed_until")

    def __init__(self, entry_id: bytes, fields: dict[bytes, bytes]) -> None:
        self.id = entry_id
        self.previous = fields.get(b"p") or b"0-0"
        self.keys = fields[b"k"].decode().split() if fields.get(b"k") else []
        self.refreshed = fields[b"r"].decode().split() if fields.get(b"r") else []
        self.refreshed_until = int(fields[b"x"]) / 1000 if fields.get(b"x") else 0.0


class RedisIO:
    """One client and its scripts."""

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        self.client = client
        self.keys = keys
        self._commit = client.register_script(_COMMIT_SCRIPT)
        self._fetch = client.register_script(_FETCH_SCRIPT)

    def commit(self, now_ms: int, log_ttl_ms: int, batch: bytes) -> CommitReply:
        """Apply one encoded batch, every TTL counted from `now_ms` (the writer's clock)."""
        return CommitReply(self._commit(keys=[self.keys.log], args=[now_ms, log_ttl_ms, batch]))

    def read_pool(self) -> PoolRead:
        """Start reading the whole pool on a thread of its own (see `PoolRead`)."""
        return PoolRead(self)

    def scan_pages(self) -> Iterator[tuple[float, bytes]]:
        """The scan's pages as `fetch.lua` encodes them (one JSON document each)."""
        cursor = b"0"
        while True:
            cursor, page = self._fetch(
                args=["scan", cursor, f"{self.keys.prefix}:*", FETCH_PAGE, *self.keys.pool_prefixes]
            )
            yield time.time(), page
            if cursor == b"0":
                return

    def parse_page(self, raw: bytes) -> Page:
        page = loads_page(raw)
        return page["k"], page["v"], page["t"]

    def fetch(self, keys: Sequence[str]) -> list[tuple[str, str, int]]:
        """(key, value ("" when gone), expiry in ms) of each key, in one script call per 10,000 keys."""
        fetched: list[tuple[str, str, int]] = []
        for start in range(0, len(keys), FETCH_PAGE):
            names = list(keys[start : start + FETCH_PAGE])
            reply = loads_page(self._fetch(args=["keys", orjson.dumps(names)]))
            fetched.extend(zip(names, reply["v"], reply["t"], strict=True))
        return fetched

    def head(self) -> bytes:
        """The id of the log's last entry (b"0-0" when the log is empty or gone)."""
        last: Any = self.client.xrevrange(self.keys.log, count=1)
        return last[0][0] if last else b"0-0"

    def entries_after(self, position: bytes, count: int = 500) -> tuple[list[LogEntry], LogEntry | None, bytes]:
        """Up to `count` log entries after `position`, the log's first entry (None: empty) and its head."""
        pipe = self.client.pipeline(transaction=False)
        pipe.xrange(self.keys.log, min=b"(" + position, count=count)
        pipe.xrange(self.keys.log, count=1)
        pipe.xrevrange(self.keys.log, count=1)
        entries, first, last = pipe.execute()
        return (
            [LogEntry(entry_id, fields) for entry_id, fields in entries],
            LogEntry(*first[0]) if first else None,
            last[0][0] if last else b"0-0",
        )

    def await_change(self, position: bytes, block_ms: int) -> bytes | None:
        """Wait up to `block_ms` for a log entry after `position`: its id, or None when none came."""
        reply: Any = self.client.xread({self.keys.log: position}, count=1, block=max(1, block_ms))
        if not reply:
            return None
        entry_id: bytes = reply[0][1][0][0]
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


def loads_page(raw: bytes) -> Any:
    """A page `fetch.lua` encoded. A value that is not UTF-8 (damaged in Redis) must not cost its whole
    page: such a page is read again keeping those bytes as lone surrogates, which the mirror's check
    of each value (`model.checked_stamp`) refuses, so that value alone is skipped and logged."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        return json.loads(raw.decode("utf-8", "surrogateescape"))


def log_order(entry_id: bytes) -> tuple[int, int]:
    """A log entry id ("milliseconds-sequence") as what orders it."""
    milliseconds, _, sequence = entry_id.partition(b"-")
    return int(milliseconds), int(sequence or 0)


_READ_END = object()
_READ_AHEAD = 16  # pages (10,000 entries each) a start-up read holds ahead of whoever takes them in


class PoolRead:
    """The pool read from Redis on a thread of its own, pages ahead of whoever takes them in.

    Redis works on its own core: while this process takes one page into its mirror (or, at
    start-up, while it is still importing Django) the next pages are already being read.

    In order: the log's head (read before the first page, so whatever changes during the scan
    is in the log after it), then every page of the scan. An error ends the read; whoever takes
    the next item gets it raised in its own thread.
    """

    def __init__(self, io: RedisIO) -> None:
        self.prefix = io.keys.prefix
        self._io = io
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
            if not self._put(self._io.head()):
                return
            for page in self._io.scan_pages():
                if not self._put(page):
                    return
        except BaseException as exc:  # handed to the taker, who raises it in its own thread
            self._put(exc)
        finally:
            self._put(_READ_END)

    def _next(self) -> Any:
        item = self._items.get()
        if isinstance(item, BaseException):
            self._abandoned.set()
            raise item
        return item

    def head(self) -> bytes:
        """The log's head, read before the scan's first page."""
        head: bytes = self._next()
        return head

    def pages(self) -> Iterator[Page]:
        """The scan's pages, parsed in the taker's thread as they arrive."""
        try:
            while (item := self._next()) is not _READ_END:
                yield self._io.parse_page(item[1])
        finally:
            self._abandoned.set()
