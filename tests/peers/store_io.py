"""What the store's tests share: advertisements to write, what a store serves and what Redis holds,
and `SeenIO`, the store's seam (`io=`) with its Redis calls seen and races injected.

A helper module, not a test module: the tests import from here.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

import orjson
import redis

from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from peers.store.redis_io import CommitReply, Keys, LogEntry, PoolRead, RedisIO

MakeStore = Callable[..., AdvertisementStore]
SECOND_US = 1_000_000


def public(rid: str, stamp: int, name: str = "ledger", version: int = 1) -> AdvertisementInput:
    return AdvertisementInput(
        rid,
        True,
        name=name,
        description=f"{name} register",
        latest_version=version,
        latest_docket_version=version,
        is_full_replica=True,
        source_updated_at=stamp,
    )


def private(rid: str, stamp: int | None) -> AdvertisementInput:
    return AdvertisementInput(rid, False, source_updated_at=stamp)


def local_ids(store: AdvertisementStore) -> set[str]:
    return {row["registerId"] for row in store.available() if row["isLocal"]}


def redis_local_ids(store: AdvertisementStore) -> set[str]:
    pattern = f"{store.prefix}:ad:l:*"
    return {key.decode().rsplit(":", 1)[1] for key in store.client.scan_iter(match=pattern, count=1000)}


def ids_listed(store: AdvertisementStore, ids: list[str], stamp: int) -> list[AdvertisementInput]:
    return [public(rid, stamp) for rid in ids]


class SeenIO(RedisIO):
    """The store's seam (`io=`) with its Redis calls seen.

    Seen: the operations of every script call Redis took, the positions the watcher waited after, the
    threads that read log entries to catch up, the reads of the whole pool. Injected: `before_commit`,
    another process's step run just before a script call of the store's (given its operations, it
    returns True when it ran, and is not run again), and `after_head`, one run once just after the
    store read the log's head.
    """

    def __init__(self, client: redis.Redis, keys: Keys) -> None:
        super().__init__(client, keys)
        self.batches: list[list[list[str]]] = []
        self.waited_after: list[bytes] = []
        self.catch_ups: list[str] = []
        self.pool_reads = 0
        self.before_commit: Callable[[list[list[str]]], bool] | None = None
        self.after_head: Callable[[], None] | None = None

    def commit(self, now_ms: int, log_ttl_ms: int, batch: bytes) -> CommitReply:
        ops = orjson.loads(batch)
        race = self.before_commit
        if race is not None and race(ops):
            self.before_commit = None
        reply = super().commit(now_ms, log_ttl_ms, batch)
        self.batches.append(ops)  # (only what Redis took)
        return reply

    def head(self) -> bytes:
        head = super().head()
        race, self.after_head = self.after_head, None
        if race is not None:
            race()
        return head

    def await_change(self, position: bytes, block_ms: int) -> bool:
        self.waited_after.append(position)
        return super().await_change(position, block_ms)

    def entries_after(self, position: bytes, count: int = 500) -> tuple[list[LogEntry], LogEntry | None, bytes]:
        self.catch_ups.append(threading.current_thread().name)
        return super().entries_after(position, count)

    def read_pool(self) -> PoolRead:
        self.pool_reads += 1
        return super().read_pool()


def seen_io(store: AdvertisementStore) -> SeenIO:
    io = store.committer.io
    assert isinstance(io, SeenIO), "the store was not built with io=SeenIO"
    return io


# ---------------------------------------------------------------- full sync by digest
def earlier() -> int:
    """A register's updated_at a minute ago: before every snapshot taken in a test."""
    return now_micros() - 60 * SECOND_US


def seed(store: AdvertisementStore, ids: list[str], stamp: int) -> None:
    """Local advertisements pushed singly (as changes, outside any full sync)."""
    store.apply_bulk([public(rid, stamp) for rid in ids])


def pttl(store: AdvertisementStore, rid: str) -> int:
    return int(store.client.pttl(store.local_key(rid)))
