"""A bulk's upserts travel as one operation (U) whose script reads the tombstones and current values
of a slice with one MGET each: what it reads must never be taken for the truth of a later item
about the same register, and an operation journaled while Redis is away replays like any other."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from peers.store import AdvertisementInput, AdvertisementStore, now_micros, redis_io
from peers.store.model import decode_value
from peers.store.redis_io import Keys, PoolRead, RedisIO
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.peers.store_io import SeenIO, public, seen_io
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

MakeStore = Callable[..., AdvertisementStore]


def stored(store: AdvertisementStore, rid: str) -> tuple[int, dict] | None:
    raw = store.client.get(store.keys.local(rid))
    return None if raw is None else decode_value(raw.decode())


def test_a_register_listed_twice_in_one_operation_keeps_the_newer_statement_in_either_order(
    make_store: MakeStore,
) -> None:
    store = make_store()
    older, newer = now_micros() - 10_000_000, now_micros()
    first, second = register_id(), register_id()

    result = store.apply_bulk(
        [
            public(first, older, name="old"),
            public(first, newer, name="new"),  # read again after the first write: it overwrites
            public(second, newer, name="new"),
            public(second, older, name="old"),  # read again: the newer one written just before refuses it
        ]
    )

    assert stored(store, first) == (newer, {**stored(store, first)[1], "name": "new"})
    assert stored(store, second)[1]["name"] == "new"
    assert (result.processed, result.stale) == (4, 1)
    assert {rid: store.local_advertisement(rid).fields["name"] for rid in (first, second)} == {
        first: "new",
        second: "new",
    }


def test_a_tombstone_another_process_left_refuses_that_item_alone_and_the_mirror_takes_it(
    make_store: MakeStore,
) -> None:
    writer, other = make_store(start_watcher=False), make_store(start_watcher=False)
    removed, kept = register_id(), register_id()
    stamp = now_micros()
    writer.apply_bulk([public(removed, stamp - 5)])
    other.remove(removed, source_updated_at=stamp)  # a tombstone newer than what the writer sends next

    result = writer.apply_bulk([public(removed, stamp - 1), public(kept, stamp - 1)], full_sync=False)

    assert (result.added, result.stale) == (1, 1)
    assert stored(writer, removed) is None
    assert writer.local_advertisement(removed) is None  # refetched: Redis holds the removal
    assert stored(writer, kept) is not None


def test_an_item_with_only_some_fields_keeps_the_rest_from_what_is_held(make_store: MakeStore) -> None:
    store = make_store()
    rid, stamp = register_id(), now_micros()
    store.apply_bulk([public(rid, stamp - 1, name="ledger", version=4)])

    store.apply_bulk([AdvertisementInput(rid, True, latest_version=5, source_updated_at=stamp)])

    assert stored(store, rid)[1] == {
        "name": "ledger",
        "description": "ledger register",
        "latestVersion": 5,
        "latestDocketVersion": 4,
        "isFullReplica": True,
    }


def test_upserts_journaled_during_an_outage_count_one_each_and_land_with_their_remaining_ttl(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(redis=private_redis, ttl=60.0, commit_batch=3)
    rids = [register_id() for _ in range(7)]
    stamp = now_micros()
    private_redis.stop()

    result = store.apply_bulk([public(rid, stamp) for rid in rids])

    assert result.added == 7 and store.degraded
    assert store.status()["journalLength"] == 7  # writes, not the operations that carry them
    private_redis.start()
    client = private_redis.client()
    wait_until(lambda: (store.available(), client.exists(*[store.keys.local(rid) for rid in rids]))[1] == 7)
    ttls = [client.pttl(store.keys.local(rid)) for rid in rids]
    assert all(0 < ttl <= 60_000 for ttl in ttls), ttls


def test_upserts_journaled_during_an_outage_that_lapse_before_it_ends_are_replayed_but_not_brought_back(
    make_store: MakeStore, redis_proxy: TcpProxy
) -> None:
    # given: a store cut off from Redis (a partition: Redis keeps running), a journal that keeps what it is
    # given for longer than the outage, and every script call the store sends seen
    store = make_store(url=redis_proxy.url, ttl=2.0, commit_batch=2, journal_max_age=300.0, io=SeenIO)
    lapsed, kept = [register_id() for _ in range(3)], [register_id() for _ in range(3)]
    redis_proxy.cut()

    # when: a bulk is journaled, lapses during the outage, then another is journaled just before Redis is back
    store.apply_bulk([public(rid, now_micros()) for rid in lapsed])
    assert store.degraded
    wait_until(
        lambda: not set(lapsed) & {entry.register_id for entry in store.local_advertisements()},
        timeout=10,
        message="the first bulk lapsed in memory",
    )
    store.apply_bulk([public(rid, now_micros()) for rid in kept])
    redis_proxy.start()
    wait_until(lambda: not store.degraded, timeout=10, message="store recovered")

    # then: both bulks were replayed (the journal dropped neither), each with the clock it was planned
    # at: the one that lapsed during the outage is not brought back, the other lands with what it has left
    replayed = {op[i] for batch in seen_io(store).batches for op in batch if op[0] == "U" for i in range(5, len(op), 3)}
    assert set(lapsed) | set(kept) <= replayed
    assert store.status()["journalDropped"] == 0
    client = store.client
    assert client.exists(*[store.keys.local(rid) for rid in lapsed]) == 0
    assert {entry.register_id for entry in store.local_advertisements()} == set(kept)
    assert all(0 < client.pttl(store.keys.local(rid)) <= 2_000 for rid in kept)


class CountedScan(RedisIO):
    """The store's Redis calls with the pages of a scan counted as they are read."""

    scanned = 0

    def scan_pages(self) -> Iterator[tuple[float, bytes]]:
        for page in super().scan_pages():
            self.scanned += 1
            yield page


def test_a_pool_read_whose_taker_stops_early_reads_no_further(
    make_store: MakeStore, prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = make_store()
    store.apply_bulk([public(register_id(), now_micros()) for _ in range(60)])
    monkeypatch.setattr(redis_io, "FETCH_PAGE", 2)  # ~30 pages: far more than a read holds ahead
    io = CountedScan(store.client, Keys(prefix))

    running = set(threading.enumerate())
    read = PoolRead(io)
    (reader,) = set(threading.enumerate()) - running  # the read's own thread
    read.head()
    taken = read.pages()
    next(taken)
    taken.close()  # the taker gave up after one page

    wait_until(lambda: not reader.is_alive(), timeout=10, message="the read thread ended")
    assert io.scanned < 10  # it stopped, instead of reading the ~30 pages nobody takes


def test_a_bulk_is_written_in_script_calls_of_at_most_a_thousand_items_so_no_read_waits_long_behind_one(
    make_store: MakeStore,
) -> None:
    # given: every script call the store sends seen on its way (Redis runs one script at a time)
    store = make_store(io=SeenIO)
    ids, stamp = [register_id() for _ in range(2_500)], now_micros()

    # when: a bulk of 2,500 new advertisements is applied
    result = store.apply_bulk([public(rid, stamp) for rid in ids])

    # then: every one written, in calls of at most 1,000 (a U operation carries an (id, stamp, value)
    # triple per item after its five leading arguments)
    written = [sum((len(op) - 5) // 3 for op in batch if op[0] == "U") for batch in seen_io(store).batches]
    assert result.added == 2_500 and all(stored(store, rid) is not None for rid in ids)
    assert sum(written) == 2_500 and max(written) <= 1_000
