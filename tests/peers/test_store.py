"""The advertisement store on a real Redis: ordering, full sync, guard, idempotence, TTL, several
processes, restart, remote advertisements.

The watcher is in test_store_watcher.py, a Redis outage in test_store_outage.py."""

from __future__ import annotations

import time

import pytest

from peers.store import AdvertisementInput, AdvertisementStore, StaleFullSync, now_micros
from tests.conftest import register_id
from tests.peers.store_io import MakeStore, local_ids, private, public, redis_local_ids


# ---------------------------------------------------------------- ordering
def test_an_older_source_updated_at_changes_nothing(make_store: MakeStore) -> None:
    store = make_store()
    rid, stamp = register_id(), now_micros()
    store.advertise(public(rid, stamp, name="current"))

    result, _ = store.advertise(public(rid, stamp - 10, name="older"))

    assert result.stale == 1
    assert store.available()[0]["name"] == "current"
    assert make_store().available()[0]["name"] == "current"  # what Redis holds too


def test_a_tombstone_stops_a_stale_re_add(make_store: MakeStore) -> None:
    store = make_store()
    rid, stamp = register_id(), now_micros()
    store.advertise(public(rid, stamp))
    store.remove(rid, source_updated_at=stamp + 100)

    result, _ = store.advertise(public(rid, stamp + 50))

    assert result.stale == 1
    assert local_ids(store) == set()
    assert redis_local_ids(store) == set()


def test_a_newer_add_after_a_removal_is_applied(make_store: MakeStore) -> None:
    store = make_store()
    rid, stamp = register_id(), now_micros()
    store.remove(rid, source_updated_at=stamp)

    result, _ = store.advertise(public(rid, stamp + 1))

    assert result.added == 1
    assert local_ids(store) == {rid}


def test_a_register_advertised_while_an_older_full_sync_was_in_flight_survives_it(make_store: MakeStore) -> None:
    store = make_store()
    existing = register_id()
    snapshot = now_micros()
    created_during_sync = register_id()
    store.advertise(public(created_during_sync, snapshot + 1_000))

    store.apply_bulk([public(existing, snapshot - 1_000)], full_sync=True, snapshot_at=snapshot)

    assert local_ids(store) == {existing, created_during_sync}


def test_a_register_unadvertised_after_the_snapshot_is_not_brought_back_by_it(make_store: MakeStore) -> None:
    store = make_store()
    rid, other = register_id(), register_id()
    snapshot = now_micros()
    store.advertise(public(rid, snapshot - 1_000))
    store.advertise(private(rid, snapshot + 1_000))  # unadvertised after the snapshot was taken

    result = store.apply_bulk(
        [public(rid, snapshot - 1_000), public(other, snapshot - 1_000)], full_sync=True, snapshot_at=snapshot
    )

    assert result.stale == 1
    assert local_ids(store) == {other}


def test_a_full_sync_older_than_the_last_applied_one_is_refused_and_changes_nothing(make_store: MakeStore) -> None:
    store = make_store()
    kept = register_id()
    newer = now_micros()
    store.apply_bulk([public(kept, newer - 5_000)], full_sync=True, snapshot_at=newer)

    with pytest.raises(StaleFullSync):
        store.apply_bulk([public(register_id(), newer - 5_000)], full_sync=True, snapshot_at=newer - 1_000)

    assert local_ids(store) == {kept}


def test_a_stale_full_sync_is_refused_by_redis_even_when_this_process_has_not_seen_the_newer_one(
    make_store: MakeStore,
) -> None:
    first, second = make_store(), make_store()
    newer = now_micros()
    second.apply_bulk([public(register_id(), newer - 1)], full_sync=True, snapshot_at=newer)

    with pytest.raises(StaleFullSync):
        first.apply_bulk([], full_sync=True, snapshot_at=newer - 10)


def test_a_removal_without_source_updated_at_leaves_no_tombstone_so_the_next_full_sync_restores_it(
    make_store: MakeStore,
) -> None:
    store = make_store()
    rid, stamp = register_id(), now_micros()
    store.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=stamp + 1)
    store.remove(rid)  # an operator deleting the advertisement on the Peer Service directly

    result = store.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=stamp + 2)

    assert result.added == 1
    assert local_ids(store) == {rid}


# ---------------------------------------------------------------- chunked full sync
def test_a_full_sync_sent_in_chunks_sweeps_only_what_no_chunk_listed(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    chunk_one = [public(register_id(), stamp) for _ in range(3)]
    chunk_two = [public(register_id(), stamp) for _ in range(3)]
    gone = register_id()
    store.apply_bulk([*chunk_one, *chunk_two, public(gone, stamp)], full_sync=True, snapshot_at=stamp + 1)

    snapshot = stamp + 10
    store.apply_bulk(chunk_one, full_sync=False, snapshot_at=snapshot)
    result = store.apply_bulk(chunk_two, full_sync=True, snapshot_at=snapshot)

    assert result.removed == 1
    assert local_ids(store) == {ad.register_id for ad in chunk_one + chunk_two}


# ---------------------------------------------------------------- mass-removal guard
def test_an_empty_full_sync_is_held_and_the_next_confirming_one_applies_it(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    ids = {register_id() for _ in range(6)}
    store.apply_bulk([public(rid, stamp) for rid in ids], full_sync=True, snapshot_at=stamp + 1)

    held = store.apply_bulk([], full_sync=True, snapshot_at=stamp + 2)

    assert (held.held, held.removed) == (6, 0)
    assert local_ids(store) == ids
    assert store.status()["heldRemovals"] == sorted(ids)

    confirmed = store.apply_bulk([], full_sync=True, snapshot_at=stamp + 3)

    assert (confirmed.held, confirmed.removed) == (0, 6)
    assert local_ids(store) == set()
    assert redis_local_ids(store) == set()


def test_a_mostly_empty_full_sync_is_held(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    ids = [register_id() for _ in range(10)]
    store.apply_bulk([public(rid, stamp) for rid in ids], full_sync=True, snapshot_at=stamp + 1)

    result = store.apply_bulk([public(rid, stamp) for rid in ids[:3]], full_sync=True, snapshot_at=stamp + 2)

    assert (result.held, result.removed, result.unchanged) == (7, 0, 3)
    assert local_ids(store) == set(ids)


def test_a_retry_of_the_same_snapshot_does_not_confirm_a_held_removal(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    ids = {register_id() for _ in range(6)}
    store.apply_bulk([public(rid, stamp) for rid in ids], full_sync=True, snapshot_at=stamp + 1)
    store.apply_bulk([], full_sync=True, snapshot_at=stamp + 2)

    again = store.apply_bulk([], full_sync=True, snapshot_at=stamp + 2)

    assert (again.held, again.removed) == (6, 0)
    assert local_ids(store) == ids


def test_a_small_removal_by_full_sync_is_not_held(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    ids = [register_id() for _ in range(10)]
    store.apply_bulk([public(rid, stamp) for rid in ids], full_sync=True, snapshot_at=stamp + 1)

    result = store.apply_bulk([public(rid, stamp) for rid in ids[:8]], full_sync=True, snapshot_at=stamp + 2)

    assert (result.held, result.removed) == (0, 2)
    assert local_ids(store) == set(ids[:8])


def test_single_removals_are_never_held(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    ids = [register_id() for _ in range(6)]
    store.apply_bulk([public(rid, stamp) for rid in ids], full_sync=True, snapshot_at=stamp + 1)

    removed = sum(store.remove(rid, source_updated_at=stamp + 5).removed for rid in ids)
    bulk = store.apply_bulk([private(rid, stamp + 6) for rid in ids])

    assert removed == 6
    assert bulk.held == 0
    assert local_ids(store) == set()


# ---------------------------------------------------------------- idempotence
def _command_calls(store: AdvertisementStore) -> dict[str, int]:
    stats = store.client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(values["calls"]) for name, values in stats.items()}


def test_a_second_identical_full_sync_is_all_unchanged_and_writes_no_values(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    ads = [public(register_id(), stamp, name=f"r{n}") for n in range(50)]
    store.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 1)
    before = _command_calls(store)

    result = store.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 2)

    after = _command_calls(store)
    assert (result.unchanged, result.added, result.updated, result.removed) == (50, 0, 0, 0)
    assert after.get("pexpireat", 0) - before.get("pexpireat", 0) >= 50  # the TTLs were refreshed
    value_writes = after.get("set", 0) - before.get("set", 0)
    assert value_writes == 1  # only the full-sync bookkeeping record, no advertisement value
    assert after.get("del", 0) - before.get("del", 0) <= 1  # only the full-sync marks, no advertisement


# ---------------------------------------------------------------- TTL
def test_an_unrefreshed_advertisement_expires_and_a_refreshed_one_does_not(make_store: MakeStore) -> None:
    store = make_store(ttl=1.0)
    stamp = now_micros()
    refreshed, forgotten = register_id(), register_id()
    store.apply_bulk([public(refreshed, stamp), public(forgotten, stamp)])
    deadline = time.monotonic() + 3.0
    while time.monotonic() < deadline:
        store.advertise(public(refreshed, stamp))  # the source keeps refreshing this one
        assert refreshed in local_ids(store)
        time.sleep(0.1)

    assert local_ids(store) == {refreshed}
    assert redis_local_ids(store) == {refreshed}


def test_another_process_sees_a_refresh_made_by_this_one(make_store: MakeStore) -> None:
    writer, reader = make_store(ttl=1.0), make_store(ttl=1.0)
    rid, stamp = register_id(), now_micros()
    writer.advertise(public(rid, stamp))
    deadline = time.monotonic() + 2.5
    while time.monotonic() < deadline:
        writer.apply_bulk([public(rid, stamp)], full_sync=True, snapshot_at=now_micros())
        assert local_ids(reader) == {rid}
        time.sleep(0.1)


# ---------------------------------------------------------------- several processes
def test_a_change_made_by_one_process_is_served_by_another(make_store: MakeStore) -> None:
    first, second = make_store(), make_store()
    assert second.available() == []
    rid, stamp = register_id(), now_micros()

    first.advertise(public(rid, stamp, name="shared"))
    assert [row["name"] for row in second.available()] == ["shared"]

    first.remove(rid, source_updated_at=stamp + 1)
    assert second.available() == []


# ---------------------------------------------------------------- restart
def test_a_new_store_over_the_same_redis_serves_everything_at_once_unverified(make_store: MakeStore) -> None:
    before = make_store()
    stamp = now_micros()
    ids = {register_id() for _ in range(20)}
    before.apply_bulk([public(rid, stamp) for rid in ids], full_sync=True, snapshot_at=stamp + 1)
    before.replace_remote("peer-a", [public(register_id(), 0)])
    before.close()

    after = make_store()
    rows = after.available()

    assert {row["registerId"] for row in rows if row["isLocal"]} == ids
    assert len([row for row in rows if not row["isLocal"]]) == 1
    assert not any(row["verified"] for row in rows)


def test_a_restarted_store_marks_advertisements_verified_when_the_source_refreshes_them(make_store: MakeStore) -> None:
    before = make_store()
    stamp = now_micros()
    ads = [public(register_id(), stamp) for _ in range(3)]
    before.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 1)
    before.close()
    after, other_process = make_store(), make_store()

    other_process.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 2)

    assert all(row["verified"] for row in after.available())


# ---------------------------------------------------------------- remote advertisements
def test_a_full_sync_never_touches_remote_advertisements(make_store: MakeStore) -> None:
    store = make_store()
    stamp = now_micros()
    shared, remote_only = register_id(), register_id()
    store.replace_remote("peer-a", [public(shared, 0), public(remote_only, 0)])
    store.apply_bulk([public(shared, stamp)], full_sync=True, snapshot_at=stamp + 1)

    store.apply_bulk([], full_sync=True, snapshot_at=stamp + 2)
    store.apply_bulk([], full_sync=True, snapshot_at=stamp + 3)

    rows = {row["registerId"]: row for row in store.available()}
    assert set(rows) == {shared, remote_only}
    assert rows[shared]["isLocal"] is False and rows[shared]["peerCount"] == 1
    assert {entry.register_id for entry in store.remote_advertisements("peer-a")} == {shared, remote_only}


def test_available_groups_local_and_remote_advertisements_per_register(make_store: MakeStore) -> None:
    store = make_store()
    rid = register_id()
    store.advertise(public(rid, now_micros(), version=3))
    store.replace_remote("peer-a", [public(rid, 0, version=5)])
    store.replace_remote(
        "peer-b", [AdvertisementInput(rid, True, name="ledger", latest_version=4, is_full_replica=False)]
    )

    (row,) = store.available()

    assert row["isLocal"] is True
    assert row["peerCount"] == 2
    assert row["fullReplicaPeerCount"] == 1
    # A register this node hosts shows this node's own fields: peers only raise the counts.
    assert row["latestVersion"] == 3
