"""The store at the edges a real network brings (issue 10): clock steps, wrongful sweeps, chunks
across processes and their marks, liars (issue 11).

Every store here runs on a real redis-server; "two processes" are two stores sharing a prefix,
and a partition of one of them is a real TCP proxy that is cut. Outages and recovery are in
test_store_outage.py, races around a script call in test_store_races.py.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from peers import store as store_module
from peers.store import AdvertisementInput, MarksLost, MarksUnavailable, StaleFullSync, now_micros
from peers.store.model import format_micros, format_seconds
from tests.conftest import point_store_at, register_id
from tests.helpers import wait_until
from tests.peers.store_io import MakeStore, ids_listed, local_ids, public, redis_local_ids
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

DAY_US = 86_400 * 1_000_000


# ---------------------------------------------------------------- case 1: a future last snapshot
def test_a_stored_snapshot_far_in_the_future_is_voided_at_once_and_counted(make_store: MakeStore) -> None:
    store = make_store()
    rid = register_id()
    stamp = now_micros()
    store.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=now_micros() + DAY_US)

    result = store.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=now_micros())

    assert result.unchanged == 1
    assert store.status()["voidedSnapshots"] == 1
    # The voided state is replaced in Redis too: a new process is not blocked either.
    fresh = make_store()
    fresh.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=now_micros())
    assert fresh.status()["voidedSnapshots"] == 1


def test_a_snapshot_ahead_within_the_skew_blocks_older_syncs_for_one_reconcile_interval_only(
    make_store: MakeStore,
) -> None:
    store = make_store(reconcile_interval=1.0)
    rid = register_id()
    stamp = now_micros()
    store.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=now_micros() + 200 * 1_000_000)
    applied = time.monotonic()

    with pytest.raises(StaleFullSync):
        store.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=now_micros())

    wait_until(
        lambda: store.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=now_micros()).unchanged == 1,
        timeout=10,
        message="a full sync accepted again",
    )
    assert time.monotonic() - applied >= 1.0
    assert store.status()["voidedSnapshots"] == 1


# ---------------------------------------------------------------- case 2: no datetime can raise
@pytest.mark.parametrize("micros", [2**63 - 1, -(2**62), 253_402_300_799_999_999 + 86_400_000_000])
def test_formatting_a_timestamp_no_datetime_can_hold_gives_none(micros: int) -> None:
    assert format_micros(micros) is None
    assert format_seconds(micros / 1_000_000) is None
    assert format_seconds(float("inf")) is None


def test_a_corrupt_full_sync_state_in_redis_leaves_the_store_serving(make_store: MakeStore) -> None:
    store = make_store()
    rid = register_id()
    store.apply_bulk([public(rid, now_micros())], full_sync=True, snapshot_at=now_micros())
    store.client.set(f"{store.prefix}:meta:fullsync", b"99999999999999999999|{not json")

    fresh = make_store()

    assert local_ids(fresh) == {rid}
    assert fresh.status()["store"] == "ok"


# ---------------------------------------------------------------- case 5: the guard and wrongful sweeps
def test_an_empty_full_sync_is_held_whatever_the_count_and_the_next_one_confirms_it(make_store: MakeStore) -> None:
    store = make_store()
    ids = [register_id() for _ in range(3)]
    store.apply_bulk(ids_listed(store, ids, now_micros()), full_sync=True, snapshot_at=now_micros())

    held = store.apply_bulk([], full_sync=True, snapshot_at=now_micros())

    assert (held.removed, held.held) == (0, 3)
    assert local_ids(store) == set(ids)
    confirmed = store.apply_bulk([], full_sync=True, snapshot_at=now_micros())
    assert (confirmed.removed, confirmed.held) == (3, 0)
    assert local_ids(store) == set()


def test_a_register_wrongly_swept_comes_back_with_the_next_full_sync_that_lists_it(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros() - 60 * 1_000_000  # the registers' updated_at, well before every snapshot
    ids = [register_id() for _ in range(10)]
    store.apply_bulk(ids_listed(store, ids, stamp), full_sync=True, snapshot_at=now_micros())

    wrong = store.apply_bulk(ids_listed(store, ids[:8], stamp), full_sync=True, snapshot_at=now_micros())
    assert wrong.removed == 2
    assert store.client.get(store.tomb_key(ids[9])) is not None

    result = store.apply_bulk(ids_listed(store, ids, stamp), full_sync=True, snapshot_at=now_micros())

    assert (result.added, result.stale) == (2, 0)
    assert local_ids(store) == set(ids) == redis_local_ids(store)
    # Another process, learning it from Redis, agrees.
    assert local_ids(make_store()) == set(ids)


def test_a_sweep_tombstone_still_refuses_an_older_snapshot_and_single_pushes(make_store: MakeStore) -> None:
    store = make_store(reconcile_interval=300.0)
    stamp = now_micros() - 60 * 1_000_000
    ids = [register_id() for _ in range(10)]
    first_snapshot = now_micros()
    store.apply_bulk(ids_listed(store, ids, stamp), full_sync=True, snapshot_at=first_snapshot)
    sweep_snapshot = now_micros()
    store.apply_bulk(ids_listed(store, ids[:9], stamp), full_sync=True, snapshot_at=sweep_snapshot)

    # A chunk of a sync whose snapshot predates the sweep cannot bring it back,
    older = store.apply_bulk([public(ids[9], stamp)], snapshot_at=sweep_snapshot - 1)
    # nor can a single push of the register's older state.
    single, _ = store.advertise(public(ids[9], stamp))

    assert older.stale == 1 and single.stale == 1
    assert ids[9] not in local_ids(store)


# ---------------------------------------------------------------- case 6: chunks across processes and outages
def test_a_final_chunk_at_another_process_sweeps_nothing_the_earlier_chunks_listed(make_store: MakeStore) -> None:
    first, second = make_store(), make_store()
    stamp = now_micros() - 60 * 1_000_000
    ids = [register_id() for _ in range(10)]
    second.apply_bulk(ids_listed(second, ids, stamp), full_sync=True, snapshot_at=now_micros())

    snapshot = now_micros()
    first.apply_bulk(ids_listed(first, ids[:5], stamp), snapshot_at=snapshot)
    result = second.apply_bulk(ids_listed(second, ids[5:], stamp), full_sync=True, snapshot_at=snapshot)

    assert (result.removed, result.held) == (0, 0)
    assert local_ids(second) == set(ids) == redis_local_ids(second)


def test_a_final_chunk_whose_marks_cannot_be_read_refreshes_and_sweeps_nothing(
    make_store: MakeStore, private_redis: RedisServer, redis_proxy: TcpProxy
) -> None:
    other = make_store(redis=private_redis)
    store = make_store(url=redis_proxy.url, breaker_cooldown=60.0)
    stamp = now_micros() - 60 * 1_000_000
    ids = [register_id() for _ in range(10)]
    store.apply_bulk(ids_listed(store, ids, stamp), full_sync=True, snapshot_at=now_micros())
    snapshot = now_micros()
    other.apply_bulk(ids_listed(other, ids[:5], stamp), snapshot_at=snapshot)

    redis_proxy.cut()
    with pytest.raises(MarksUnavailable):
        store.apply_bulk(ids_listed(store, ids[5:], stamp), full_sync=True, snapshot_at=snapshot)
    assert store.degraded
    assert local_ids(store) == set(ids)
    with pytest.raises(MarksUnavailable):
        store.apply_bulk(ids_listed(store, ids[:5], stamp), snapshot_at=now_micros())
    assert local_ids(other) == set(ids)


def test_a_final_chunk_whose_marks_fall_short_of_its_total_sweeps_nothing(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(redis=private_redis)
    stamp = now_micros() - 60 * 1_000_000
    ids = [register_id() for _ in range(10)]
    store.apply_bulk(ids_listed(store, ids, stamp), full_sync=True, snapshot_at=now_micros())
    snapshot = now_micros()
    store.apply_bulk(ids_listed(store, ids[:5], stamp), snapshot_at=snapshot)

    private_redis.client().delete(store.keys.mark(snapshot))  # lost, as in a failover to a lagging replica

    with pytest.raises(MarksLost, match="only 5 are marked"):
        store.apply_bulk(ids_listed(store, ids[5:], stamp), full_sync=True, snapshot_at=snapshot, total=10)
    assert local_ids(store) == set(ids) == redis_local_ids(store)


def test_a_sweep_larger_than_one_script_call_is_applied_whole(make_store: MakeStore) -> None:
    store = make_store(commit_batch=3)
    stamp = now_micros() - 60 * 1_000_000
    ids = [register_id() for _ in range(12)]
    store.apply_bulk(ids_listed(store, ids, stamp), full_sync=True, snapshot_at=now_micros())

    result = store.apply_bulk(ids_listed(store, ids[:6], stamp), full_sync=True, snapshot_at=now_micros())

    assert result.removed == 6
    assert local_ids(store) == set(ids[:6]) == redis_local_ids(store)


def test_the_api_answers_503_with_retry_after_when_a_final_chunk_cannot_read_its_marks(
    api: Any, settings: Any, private_redis: RedisServer, prefix: str
) -> None:
    proxy = TcpProxy(private_redis.port)
    proxy.start()
    point_store_at(settings, proxy.url)
    settings.REDIS_KEY_PREFIX = prefix
    settings.STORE_BREAKER_COOLDOWN = 60.0
    store_module.reset_store()
    store_module.get_store()  # the process's store, reaching Redis through the proxy
    try:
        rid = register_id()
        stamp = "2020-01-01T00:00:00Z"
        snapshot = format_micros(now_micros())
        item = {"registerId": rid, "isPublic": True, "name": "ledger", "sourceUpdatedAt": stamp}
        proxy.cut()

        response = api.post(
            "/api/registers/bulk-advertise",
            {"advertisements": [item], "fullSync": True, "snapshotAt": snapshot},
            format="json",
        )

        assert response.status_code == 503
        assert int(response["Retry-After"]) > 0
        assert response.json()["detail"].startswith("snapshotAt:")
    finally:
        store_module.reset_store()
        proxy.cut()


# ---------------------------------------------------------------- issue 11: lies do not win
def test_a_liar_cannot_change_how_this_node_shows_its_own_register(make_store: MakeStore) -> None:
    store = make_store()
    rid = register_id()
    store.advertise(public(rid, now_micros(), name="mine", version=3))
    store.replace_remote("liar", [AdvertisementInput(rid, True, name="pay-here", latest_version=2**53)])

    (row,) = store.available()

    assert (row["name"], row["latestVersion"], row["peerCount"]) == ("mine", 3, 1)


def test_one_liar_cannot_override_three_honest_peers_and_ties_go_to_the_most_recently_seen(
    make_store: MakeStore,
) -> None:
    store = make_store()
    rid = register_id()
    honest = AdvertisementInput(rid, True, name="ledger", description="the ledger", latest_version=7)
    for peer in ("honest-a", "honest-b", "honest-c"):
        store.replace_remote(peer, [honest])
    store.replace_remote("liar", [AdvertisementInput(rid, True, name="pay-here", latest_version=2**53)])

    (row,) = store.available()
    assert (row["name"], row["description"], row["latestVersion"], row["peerCount"]) == (
        "ledger",
        "the ledger",
        7,
        4,
    )

    other = register_id()
    store.replace_remote("first", [AdvertisementInput(other, True, name="older")])
    store.replace_remote("second", [AdvertisementInput(other, True, name="newer")])
    (tied,) = [row for row in store.available() if row["registerId"] == other]
    assert tied["name"] == "newer"
