"""Stores sharing one Redis agree exactly after every kind of write: the rows, `lastSeen` and `verified`.

Each store stands for one web process. Once a write has answered, a read from any of them
returns the very same list as the writer's: the writer's mirror takes Redis's reply to its
commit, and every other mirror takes the same keys from the change log.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.redis_server import RedisServer

MakeStore = Callable[..., AdvertisementStore]


def public(rid: str, stamp: int, name: str = "ledger") -> AdvertisementInput:
    return AdvertisementInput(rid, True, name=name, description="d", latest_version=1, source_updated_at=stamp)


def assert_agree(writer: AdvertisementStore, *others: AdvertisementStore) -> list[dict]:
    expected = writer.available()
    for other in others:
        assert other.available() == expected
        assert other.available_json() == writer.available_json()
    return expected


@pytest.fixture
def three(make_store: MakeStore) -> tuple[AdvertisementStore, AdvertisementStore, AdvertisementStore]:
    return make_store(), make_store(), make_store()


def test_a_single_push_and_a_removal_agree(three: tuple[AdvertisementStore, ...]) -> None:
    writer, *others = three
    rid, stamp = register_id(), now_micros()
    writer.advertise(public(rid, stamp))
    (row,) = assert_agree(writer, *others)
    assert row["verified"] is True and row["lastSeen"] is not None
    writer.remove(rid, stamp + 1)
    assert assert_agree(writer, *others) == []


def test_a_bulk_and_a_full_sync_with_its_sweep_agree(three: tuple[AdvertisementStore, ...]) -> None:
    writer, *others = three
    stamp = now_micros()
    ads = [public(register_id(), stamp, name=f"r{n}") for n in range(8)]
    writer.apply_bulk(ads[:4])
    assert len(assert_agree(writer, *others)) == 4
    others[0].apply_bulk(ads[1:], full_sync=True, snapshot_at=stamp + 10)  # sweeps ads[0]
    rows = assert_agree(others[0], writer, others[1])
    assert {row["registerId"] for row in rows} == {ad.register_id for ad in ads[1:]}


def test_a_full_sync_that_only_refreshes_moves_last_seen_everywhere_alike(
    three: tuple[AdvertisementStore, ...],
) -> None:
    writer, *others = three
    stamp = now_micros()
    ads = [public(register_id(), stamp, name=f"r{n}") for n in range(5)]
    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 1)
    before = assert_agree(writer, *others)
    wait_until(lambda: now_micros() > stamp + 5_000, timeout=5)  # (a later millisecond for the refresh)
    answer = others[1].reconcile([(ad.register_id, stamp) for ad in ads], stamp + 2, final=True)
    assert answer.complete and answer.result.unchanged == 5
    after = assert_agree(others[1], writer, others[0])
    assert [row["lastSeen"] for row in after] != [row["lastSeen"] for row in before]


def test_a_remote_set_and_a_forget_agree(three: tuple[AdvertisementStore, ...]) -> None:
    writer, *others = three
    rid = register_id()
    writer.replace_remote("peer-a", [AdvertisementInput(rid, True, name="theirs")])
    (row,) = assert_agree(writer, *others)
    assert row["peerCount"] == 1
    others[0].forget_peer("peer-a")
    assert assert_agree(others[0], writer, others[1]) == []


def test_after_redis_comes_back_empty_the_write_back_leaves_every_process_agreeing(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    writer, other = make_store(redis=private_redis), make_store(redis=private_redis)
    stamp = now_micros()
    writer.apply_bulk([public(register_id(), stamp, name=f"r{n}") for n in range(6)])
    expected = assert_agree(writer, other)

    private_redis.stop()
    private_redis.start()  # empty: nothing persisted

    def restored() -> bool:
        keys = private_redis.client().keys(f"{writer.prefix}:ad:l:*")
        return len(keys) == 6 and not writer.degraded and not other.degraded

    wait_until(restored, timeout=30, message="the pool was never written back")
    assert [row["registerId"] for row in assert_agree(writer, other)] == [row["registerId"] for row in expected]
