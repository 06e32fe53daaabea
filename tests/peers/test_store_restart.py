"""Start-up: the pool is read from Redis on a thread begun before the store is built (a web process
begins it before Django is set up), and what changed meanwhile is caught up on the first read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson
import pytest
import redis

from peers import store as store_module
from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from peers.store.model import format_seconds
from peers.store.redis_io import Keys, RedisIO
from tests.conftest import point_store_at, register_id
from tests.helpers import wait_until
from tests.plugin import SESSION_REDIS
from tests.redis_server import RedisServer

MakeStore = Callable[..., AdvertisementStore]


def public(rid: str, stamp: int, name: str = "ledger") -> AdvertisementInput:
    return AdvertisementInput(rid, True, name=name, description=f"{name} register", source_updated_at=stamp)


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


def reading(prefix: str) -> bool:
    """Whether a read of the pool under `prefix` is still running (each runs on a thread named for it)."""
    return any(thread.name == f"store-read-{prefix}" and thread.is_alive() for thread in threading.enumerate())


def test_a_store_built_from_a_read_begun_earlier_serves_the_pool_and_what_changed_after_the_read_began(
    make_store: MakeStore, prefix: str
) -> None:
    writer = make_store()
    stamp = now_micros()
    kept, removed, added = register_id(), register_id(), register_id()
    writer.apply_bulk([public(kept, stamp), public(removed, stamp)])
    read = AdvertisementStore.read_at_start(SESSION_REDIS.client(), prefix, 300.0)
    # Read to its end before anyone takes a page (a pool of one page: far less than a read holds ahead).
    wait_until(lambda: not reading(prefix), timeout=10, message="the read never got ahead")

    writer.remove(removed, source_updated_at=stamp + 1)
    writer.advertise(public(added, stamp + 1))
    restarted = make_store(read_at_start=read)

    assert local_ids(restarted) == {kept, added}
    assert {row["registerId"] for row in restarted.available()} == {kept, added}
    assert not restarted.local_advertisement(kept).verified  # loaded, not refreshed by its source


def test_a_read_begun_for_another_prefix_is_not_taken_and_the_store_reads_its_own(
    make_store: MakeStore, prefix: str
) -> None:
    make_store().advertise(public(register_id(), now_micros()))
    elsewhere = AdvertisementStore.read_at_start(SESSION_REDIS.client(), f"{prefix}-other", 300.0)

    store = make_store(read_at_start=elsewhere)

    assert len(store.local_advertisements()) == 1


def test_a_read_begun_while_redis_is_down_starts_the_store_degraded_and_it_recovers(
    make_store: MakeStore, private_redis: RedisServer, prefix: str
) -> None:
    make_store(redis=private_redis).advertise(public(register_id(), now_micros()))
    private_redis.stop()
    client = redis.Redis.from_url(private_redis.url, socket_timeout=0.3, socket_connect_timeout=0.3)
    read = AdvertisementStore.read_at_start(client, prefix, 300.0)

    store = make_store(redis=private_redis, client=client, read_at_start=read)

    assert store.degraded
    assert store.available() == []
    private_redis.start()
    wait_until(lambda: not store.degraded, timeout=10, message="store never recovered")


@pytest.mark.django_db
def test_get_store_builds_the_process_store_from_the_read_read_at_start_began(
    settings: object, prefix: str, private_redis: RedisServer
) -> None:
    # given: a pool in the node's Redis, and the read of it begun (and finished) before the store is built
    point_store_at(settings, private_redis.url)
    settings.REDIS_KEY_PREFIX = prefix  # type: ignore[attr-defined]
    store_module.reset_store()
    seeded = register_id()
    seeder = AdvertisementStore(private_redis.url, prefix, 300.0, start_watcher=False)
    seeder.advertise(public(seeded, now_micros()))
    seeder.close()
    try:
        store_module.read_at_start()
        wait_until(lambda: not reading(prefix), timeout=10, message="the read never finished")

        # when: Redis is gone by the time the store is built
        private_redis.stop()
        store = store_module.get_store()

        # then: the store holds the pool that read took in (it read nothing itself), and no read is left over
        assert set(store.mirror.local) == {seeded}
        assert not reading(prefix)
    finally:
        store_module.reset_store()


def test_a_restarted_store_lists_every_entry_with_the_moment_it_was_last_refreshed(
    make_store: MakeStore,
) -> None:
    writer = make_store()
    stamp = now_micros()
    for batch in range(3):  # three moments, each shared by several entries
        writer.apply_bulk([public(register_id(), stamp, name=f"ledger-{batch}-{n}") for n in range(4)])
        moment = writer.local_advertisements()[-1].refreshed_at
        wait_until(lambda moment=moment: time.time() > moment + 0.002, message="the clock never passed the write")

    restarted = make_store()
    rows = orjson.loads(restarted.available_json())

    expected = {entry.register_id: format_seconds(entry.refreshed_at) for entry in restarted.local_advertisements()}
    assert len(rows) == 12
    assert {row["registerId"]: row["lastSeen"] for row in rows} == expected
    assert len(set(expected.values())) >= 3


def test_a_store_starts_over_keys_of_others_under_its_prefix_and_skips_only_a_corrupt_value(
    make_store: MakeStore, prefix: str
) -> None:
    """The node's cache shares the prefix (`{prefix}:1:<key>`, values pickled: not text), and a value
    of the pool itself can be damaged: a starting store reads only its own key spaces, and a value
    that is not UTF-8 costs that value alone, not its page (nor the process's start)."""
    writer = make_store()
    stamp = now_micros()
    ids = [register_id() for _ in range(5)]
    writer.apply_bulk([public(rid, stamp) for rid in ids])
    client = SESSION_REDIS.client()
    client.set(f"{prefix}:1:gossip:news-round", b"\x80\x05\x95\x0b\x00\x00\x00\x00\x00\x00\x00\x8c\x07\xff\xfe")
    client.set(f"{prefix}:throttle:peer", b"\xff\xfe\xfd")
    damaged = register_id()
    client.set(writer.local_key(damaged), f"{stamp}|".encode() + b'{"name": "\xff\xfe"}', px=60_000)

    restarted = make_store()

    assert local_ids(restarted) == set(ids)
    assert {row["registerId"] for row in restarted.available()} == set(ids)


def test_the_start_up_read_takes_only_the_pools_key_spaces(make_store: MakeStore, prefix: str) -> None:
    writer = make_store()
    kept = register_id()
    writer.advertise(public(kept, now_micros()))
    client = SESSION_REDIS.client()
    client.set(f"{prefix}:1:views", b"7")  # the node's cache, under the same prefix
    client.set(f"{prefix}:adjacent", b"x")  # a name that only begins like a key space

    read = RedisIO(client, Keys(prefix)).read_pool()
    read.head()
    keys = [key for page in read.pages() for key in page[0]]

    assert keys == [writer.local_key(kept)]
