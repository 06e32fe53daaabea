"""The advertisement store on a real Redis: ordering, full sync, guard, idempotence, TTL, restart, outage."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import orjson
import pytest
import redis

from peers.store import AdvertisementInput, AdvertisementStore, StaleFullSync, now_micros
from peers.store.redis_io import CommitReply, Keys, LogEntry, PoolRead, RedisIO
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.redis_server import RedisServer

MakeStore = Callable[..., AdvertisementStore]


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


def test_the_watcher_catches_up_with_another_processs_change_but_not_with_its_own(make_store: MakeStore) -> None:
    # given: a store whose Redis calls are seen (where its watcher waits on the change log, and every
    # catch-up that reads the log's entries), and no periodic wake-up in the test (it waits 30 s at most)
    other = make_store(start_watcher=False)
    watched = make_store(breaker_cooldown=60.0, socket_timeout=60.0, io=SeenIO)
    io = seen_io(watched)
    stamp = now_micros()

    # when: it writes 10 changes of its own, its watcher waiting after each before the next ...
    for _ in range(10):
        watched.advertise(public(register_id(), stamp))
        wait_until(
            lambda: io.waited_after[-1:] == [watched.committer.position],
            timeout=10,
            message="the watcher never waited again",
        )
    # ... then another process writes one
    theirs = register_id()
    other.advertise(public(theirs, stamp))

    # then: the watcher takes the other process's change into the mirror by itself (no read asks it to),
    # and read the log for no catch-up of its own 10: it followed them as it wrote them (each catch-up
    # would hold the store from its next write and its reads for nothing)
    wait_until(lambda: theirs in watched.mirror.local, timeout=10, message="the watcher never caught up")
    assert io.catch_ups == ["store-watcher-" + watched.prefix]


def test_a_watcher_kept_busy_by_its_own_writes_still_prunes_expired_tombstones(make_store: MakeStore) -> None:
    # given: a removal's tombstone, living one TTL (a second), in a store whose watcher waits 0.2 s at most
    # and is woken by every change of its own (each one followed as it was written: nothing to catch up)
    store = make_store(ttl=1.0)
    removed, stamp = register_id(), now_micros()
    store.advertise(public(removed, stamp))
    store.remove(removed, source_updated_at=stamp + 1)
    assert removed in store.mirror.tombstones

    # when: the store keeps writing changes of its own, more often than its watcher waits
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.wait(0.05):
            store.advertise(public(register_id(), now_micros()))

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        # then: the expired tombstone is dropped all the same (no read prunes it here: the watcher does)
        wait_until(lambda: removed not in store.mirror.tombstones, timeout=10, message="the tombstone was never pruned")
    finally:
        stop.set()
        writer.join(timeout=5)


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


# ---------------------------------------------------------------- Redis outage
def _answer_time(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def test_reads_and_writes_answer_from_memory_while_redis_is_down(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(redis=private_redis, socket_timeout=2.0)
    stamp = now_micros()
    kept = register_id()
    store.advertise(public(kept, stamp))
    private_redis.stop()

    timings = []
    added = []
    for _ in range(20):
        rid = register_id()
        added.append(rid)
        timings.append(_answer_time(lambda rid=rid: store.advertise(public(rid, stamp))))
        timings.append(_answer_time(store.available))

    assert store.degraded
    assert local_ids(store) == {kept, *added}
    assert sum(timings) < 2.0  # at most one call waits on the dead socket; the breaker answers the rest


def test_after_redis_restarts_empty_every_live_advertisement_is_back_and_removed_ones_stay_removed(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(redis=private_redis)
    stamp = now_micros()
    kept, removed_during_outage, added_during_outage = register_id(), register_id(), register_id()
    store.apply_bulk([public(kept, stamp), public(removed_during_outage, stamp)])
    store.replace_remote("peer-a", [public(register_id(), 0)])
    private_redis.stop()
    store.remove(removed_during_outage, source_updated_at=stamp + 1)
    store.advertise(public(added_during_outage, stamp + 2))
    assert store.degraded
    assert store.status()["journalLength"] >= 2

    private_redis.start()  # empty: it keeps nothing on disk

    wait_until(lambda: not store.degraded, timeout=10, message="store never recovered")
    assert redis_local_ids(store) == {kept, added_during_outage}
    ttl_ms = store.client.pttl(store.local_key(kept))
    assert 0 < ttl_ms <= 300_000
    assert store.client.exists(store.tomb_key(removed_during_outage)) == 1
    assert len(list(store.client.scan_iter(match=f"{store.prefix}:ad:r:*"))) == 1

    def summary(rows: list[dict[str, object]]) -> list[tuple[object, ...]]:
        return [(row["registerId"], row["name"], row["isLocal"], row["peerCount"]) for row in rows]

    assert summary(make_store(redis=private_redis).available()) == summary(store.available())


def test_a_write_back_after_recovery_does_not_resurrect_an_advertisement_removed_meanwhile(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    isolated, healthy = make_store(redis=private_redis), make_store(redis=private_redis)
    rid, stamp = register_id(), now_micros()
    isolated.advertise(public(rid, stamp))
    private_redis.stop()
    isolated.available()
    assert isolated.degraded
    private_redis.start()
    healthy_view = healthy.remove(rid, source_updated_at=stamp + 1)  # healthy process notices epoch loss first

    wait_until(lambda: not isolated.degraded, timeout=10, message="store never recovered")

    assert healthy_view.processed == 1
    assert redis_local_ids(isolated) == set()
    assert local_ids(isolated) == set()


def test_a_process_that_saw_no_error_notices_redis_came_back_empty_and_writes_back(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(redis=private_redis)
    rid = register_id()
    store.advertise(public(rid, now_micros()))

    private_redis.restart_empty()

    wait_until(lambda: redis_local_ids(store) == {rid}, timeout=10, message="advertisement never written back")
