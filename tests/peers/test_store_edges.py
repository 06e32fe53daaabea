"""The store at the edges a real network brings (issue 10): clock steps, wrongful sweeps, chunks
across processes and outages, recovery with what is left, Redis going back in time.

Every store here runs on a real redis-server; "two processes" are two stores sharing a prefix,
and a partition of one of them is a real TCP proxy that is cut.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import orjson
import pytest

from peers import store as store_module
from peers.store import AdvertisementInput, AdvertisementStore, MarksLost, MarksUnavailable, StaleFullSync, now_micros
from peers.store.model import format_micros, format_seconds
from tests.conftest import point_store_at, register_id
from tests.helpers import wait_until
from tests.peers.test_store import SeenIO, local_ids, public, redis_local_ids, seen_io
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

MakeStore = Callable[..., AdvertisementStore]
DAY_US = 86_400 * 1_000_000


def ids_listed(store: AdvertisementStore, ids: list[str], stamp: int) -> list[AdvertisementInput]:
    return [public(rid, stamp) for rid in ids]


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


# ---------------------------------------------------------------- case 7: recovery
def test_a_journaled_write_is_replayed_with_the_ttl_it_has_left(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(ttl=4.0, redis=private_redis, breaker_cooldown=0.2)
    kept, lapsed = register_id(), register_id()
    private_redis.stop()
    store.advertise(public(lapsed, now_micros()))  # journaled, and lapses during the outage
    wait_until(lambda: store.degraded, message="store degraded")
    # Only once `lapsed` has expired does Redis come back; `kept` is written just before.
    wait_until(lambda: lapsed not in local_ids(store), timeout=10, message="lapsed expired in memory")
    store.advertise(public(kept, now_micros()))
    written = time.monotonic()
    private_redis.start()

    wait_until(lambda: not store.degraded, timeout=10, message="store recovered")
    client = private_redis.client()
    assert client.exists(store.local_key(lapsed)) == 0
    remaining_ms = client.pttl(store.local_key(kept))
    assert 0 < remaining_ms <= 4000 - int((time.monotonic() - written) * 1000) + 50


def test_a_peer_forgotten_by_another_process_during_an_outage_stays_forgotten(
    make_store: MakeStore, private_redis: RedisServer, redis_proxy: TcpProxy
) -> None:
    healthy = make_store(redis=private_redis)
    partitioned = make_store(url=redis_proxy.url, breaker_cooldown=0.3)
    rid = register_id()
    partitioned.replace_remote("peer-x", [public(rid, 0)])
    assert [e.register_id for e in healthy.remote_advertisements("peer-x")] == [rid]

    redis_proxy.cut()
    partitioned.replace_remote("peer-x", [public(rid, 0, name="renamed")])  # trips the breaker, journaled
    assert partitioned.degraded
    healthy.forget_peer("peer-x")  # a ban handled by the other process meanwhile
    redis_proxy.start()

    wait_until(lambda: not partitioned.degraded, timeout=10, message="partitioned store recovered")
    assert healthy.remote_advertisements("peer-x") == []
    assert partitioned.remote_advertisements("peer-x") == []
    assert list(private_redis.client().scan_iter(match=f"{healthy.prefix}:ad:r:*")) == []


def test_the_journal_is_bounded_by_count_and_age_and_counts_what_it_dropped(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(redis=private_redis, journal_max_ops=10, journal_max_age=300.0)
    private_redis.stop()
    for _ in range(25):
        store.advertise(public(register_id(), now_micros()))

    status = store.status()
    assert status["journalLength"] <= 10
    assert status["journalDropped"] >= 15

    aged = make_store(redis=private_redis, journal_max_ops=1000, journal_max_age=0.3)
    aged.advertise(public(register_id(), now_micros()))
    wait_until(
        lambda: (aged.advertise(public(register_id(), now_micros())), aged.status()["journalDropped"] >= 1)[1],
        timeout=5,
        message="an old journal entry dropped",
    )


# ---------------------------------------------------------------- case 8: Redis back in time
def test_redis_restored_from_an_older_dump_gets_the_newer_state_written_back(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    store = make_store(redis=private_redis, breaker_cooldown=0.2)
    removed, kept, added = register_id(), register_id(), register_id()
    stamp = now_micros()
    store.advertise(public(removed, stamp))
    store.advertise(public(kept, stamp))
    old_dump = private_redis.dump()
    store.advertise(AdvertisementInput(removed, False, source_updated_at=now_micros()))
    store.advertise(public(added, now_micros()))
    for _ in range(3):  # the log moves on well past the dump's
        store.advertise(public(added, now_micros()))

    private_redis.restore(old_dump)

    def converged() -> bool:
        return redis_local_ids(store) == {kept, added}

    wait_until(converged, timeout=10, message="newer state written back over the older dump")
    assert local_ids(store) == {kept, added}
    assert local_ids(make_store(redis=private_redis)) == {kept, added}
    # And the removal's tombstone came back with it: the older state cannot be pushed again.
    result, _ = make_store(redis=private_redis).advertise(public(removed, stamp))
    assert result.stale == 1


def test_another_processs_write_that_follows_an_older_dump_this_process_had_moved_past_is_still_seen(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    # given: a process (no watcher: only its own reads catch up) that wrote once more after a dump was taken
    store = make_store(redis=private_redis, start_watcher=False)
    kept, after_dump = register_id(), register_id()
    store.advertise(public(kept, now_micros()))
    old_dump = private_redis.dump()
    store.advertise(public(after_dump, now_micros()))

    # when: Redis goes back to that dump, and another process writes first: its change follows the dump's
    # last log entry, where this process's own last write had stood
    private_redis.restore(old_dump)
    other = make_store(redis=private_redis, start_watcher=False)
    theirs = register_id()
    other.advertise(public(theirs, now_micros()))

    # then: this process's next read sees it (its position is gone from the log: it does not take the
    # other change for one it holds), and the write the dump lost is written back
    assert local_ids(store) == {kept, after_dump, theirs}
    assert redis_local_ids(store) == {kept, after_dump, theirs}


def test_a_restore_and_another_processs_write_between_a_catch_up_and_a_commit_are_still_seen(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    # given: a process (no watcher) that wrote once more after a dump was taken
    store = make_store(redis=private_redis, start_watcher=False, io=SeenIO)
    kept, after_dump, theirs, mine = register_id(), register_id(), register_id(), register_id()
    store.advertise(public(kept, now_micros()))
    old_dump = private_redis.dump()
    store.advertise(public(after_dump, now_micros()))

    # when: a single push, with Redis going back to the dump and another process writing between the
    # push's catch-up and its commit: the other change follows the dump's last log entry, and this
    # process's write follows the other change (not the entry this process last applied)
    def restore_and_write(ops: list[list[str]]) -> bool:
        private_redis.restore(old_dump)
        make_store(redis=private_redis, start_watcher=False).advertise(public(theirs, now_micros()))
        return True

    seen_io(store).before_commit = restore_and_write
    store.advertise(public(mine, now_micros()))

    # then: its own write is not taken for the next change after its place in the log: its next read
    # sees the other process's change, and the write the dump lost is written back
    assert local_ids(store) == {kept, after_dump, theirs, mine}
    assert redis_local_ids(store) == {kept, after_dump, theirs, mine}


def test_a_change_written_just_after_the_head_check_waits_for_the_next_read_without_a_reload(
    make_store: MakeStore,
) -> None:
    # given: a caught-up process whose pool reads are counted, and another process
    store, other = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    store.local_advertisements()
    io = seen_io(store)
    reads_at_start = io.pool_reads
    theirs = register_id()

    # when: a read checks the log's head (nothing new), and the other process writes just after
    io.after_head = lambda: other.advertise(public(theirs, now_micros()))
    first = local_ids(store)

    # then: that read serves what it had (the change is not taken for a gap: no reload of the whole pool),
    # and the next read applies the change from the log
    assert theirs not in first
    assert theirs in local_ids(store)
    assert io.pool_reads == reads_at_start


def test_a_change_written_between_the_head_check_and_the_catch_up_is_applied_by_that_catch_up(
    make_store: MakeStore,
) -> None:
    # given: a caught-up process whose pool reads are counted, and another process that wrote a change
    store, other = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    store.local_advertisements()
    io = seen_io(store)
    reads_at_start = io.pool_reads
    first, second = register_id(), register_id()
    other.advertise(public(first, now_micros()))

    # when: a read finds the head moved on, and the other process writes again before the catch-up reads the log
    io.after_head = lambda: other.advertise(public(second, now_micros()))
    held = local_ids(store)

    # then: the catch-up applies both changes, in order from the entry it held, without reloading the pool
    assert {first, second} <= held
    assert io.pool_reads == reads_at_start
    assert store.committer.position == other.committer.position


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


# ---------------------------------------------------------------- review: the log's position, write-back, marks
def test_a_batch_that_changed_nothing_does_not_hide_another_processs_change(make_store: MakeStore) -> None:
    first, second = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    kept = register_id()
    first.advertise(public(kept, now_micros()))
    added_elsewhere = register_id()

    # A chunk of a full sync at `first`: its item is written (and logged), then its marks, a batch that
    # changes no key (and appends nothing to the log); the other process writes just before the marks.
    def write_elsewhere_before_the_marks(ops: list[list[str]]) -> bool:
        if not any(op[0] == "A" for op in ops):
            return False
        second.advertise(public(added_elsewhere, now_micros()))
        return True

    seen_io(first).before_commit = write_elsewhere_before_the_marks
    first.apply_bulk([public(kept, now_micros())], snapshot_at=now_micros())

    assert seen_io(first).before_commit is None  # the other process did write between the two batches
    assert local_ids(first) == {kept, added_elsewhere}


def test_a_refused_removal_leaves_the_newer_entry_in_the_mirror(make_store: MakeStore) -> None:
    first, second = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    rid = register_id()
    first.advertise(public(rid, 1_000_000_000_000_000))

    # `first` removes with a stamp between its entry and a newer one that `second` writes after `first`
    # caught up and before its removal reaches Redis: Redis refuses the removal.
    def newer_written_elsewhere(ops: list[list[str]]) -> bool:
        second.advertise(public(rid, 3_000_000_000_000_000, name="newer"))
        return True

    seen_io(first).before_commit = newer_written_elsewhere
    result = first.remove(rid, source_updated_at=2_000_000_000_000_000)

    # The refusal is not taken for a removal: the mirror keeps an entry and takes no tombstone,
    assert result.removed == 0
    assert rid in first.mirror.local and rid not in first.mirror.tombstones
    # and what Redis holds (the newer entry, no tombstone) is what the process serves from then on.
    assert store_holds(first, rid) == "newer" and first.client.get(first.tomb_key(rid)) is None
    entry = first.local_advertisement(rid)
    assert entry is not None and entry.fields["name"] == "newer"
    assert rid not in first.mirror.tombstones


def store_holds(store: AdvertisementStore, rid: str) -> str | None:
    """The name Redis holds for a local advertisement."""
    raw = store.client.get(store.local_key(rid))
    return None if raw is None else orjson.loads(raw.decode().split("|", 1)[1])["name"]


def test_a_sweep_written_back_after_an_outage_yields_to_the_newer_full_sync_that_restored_the_register(
    make_store: MakeStore, private_redis: RedisServer, redis_proxy: TcpProxy
) -> None:
    other = make_store(redis=private_redis)
    store = make_store(url=redis_proxy.url, breaker_cooldown=0.3)
    stamp = now_micros() - 60 * 1_000_000
    ids = [register_id() for _ in range(10)]
    store.apply_bulk(ids_listed(store, ids, stamp), full_sync=True, snapshot_at=now_micros())
    store.apply_bulk(ids_listed(store, ids[:9], stamp), full_sync=True, snapshot_at=now_micros())  # sweeps one
    assert ids[9] not in local_ids(store)

    redis_proxy.cut()
    store.advertise(public(register_id(), now_micros()))  # trips the breaker: this process is degraded
    assert store.degraded
    restored = other.apply_bulk(ids_listed(other, ids, stamp), full_sync=True, snapshot_at=now_micros())
    assert restored.added == 1
    redis_proxy.start()

    wait_until(lambda: not store.degraded, timeout=10, message="store recovered")
    assert ids[9] in redis_local_ids(other)
    assert ids[9] in local_ids(store) and ids[9] in local_ids(other)
    single, _ = other.advertise(public(ids[9], stamp))
    assert single.stale == 0


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


def test_a_late_write_back_after_redis_came_back_empty_does_not_undo_a_newer_full_sync(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    stamp = now_micros() - 60 * 1_000_000
    kept, dropped = register_id(), register_id()
    # A process that remembers both (and notices nothing until it next talks to Redis),
    slow = make_store(redis=private_redis, start_watcher=False)
    slow.apply_bulk(ids_listed(slow, [kept, dropped], stamp), full_sync=True, snapshot_at=now_micros())
    # then Redis comes back empty, and a fresh process applies a full sync that no longer lists `dropped`
    # (made private, its push lost): there is nothing to sweep, since Redis lost it.
    private_redis.restart_empty()
    fresh = make_store(redis=private_redis)
    fresh.apply_bulk(ids_listed(fresh, [kept], stamp), full_sync=True, snapshot_at=now_micros())

    # when the slow process notices the empty Redis and writes back what it holds
    held = local_ids(slow)

    # then what the newer full sync did not list stays out, and what it listed stays
    assert held == {kept}
    assert redis_local_ids(fresh) == {kept} == local_ids(fresh)


# ---------------------------------------------------------------- issue 13: the rendering kept per mirror version
def test_the_available_list_is_kept_while_the_mirror_is_unchanged_and_served_as_it_is(
    api: Any, peer_store: AdvertisementStore
) -> None:
    peer_store.advertise(public(register_id(), now_micros()))

    body = api.get("/api/registers/available").content

    kept = peer_store.available_json()
    assert kept == body
    assert peer_store.available_json() is kept  # the same body, not encoded again
    peer_store.advertise(public(register_id(), now_micros()))
    changed = peer_store.available_json()
    assert changed is not kept and len(orjson.loads(changed)) == 2
    assert api.get("/api/registers/available").content == changed


def test_an_entry_leaves_the_kept_list_at_its_expiry(make_store: MakeStore) -> None:
    store = make_store(ttl=1.0)
    rid = register_id()
    _, entry = store.advertise(public(rid, now_micros()))
    assert entry is not None
    listed = store.available_json()
    assert [row["registerId"] for row in orjson.loads(listed)] == [rid]

    gone_at = wait_until(
        lambda: time.time() if store.available_json() == b"[]" else None, timeout=10, message="never dropped"
    )

    assert gone_at >= entry.expires_at  # not before its expiry: until then the kept list lists it
    assert store.local_advertisements() == []


def test_a_read_during_a_bulk_write_gets_the_current_rendering_at_once_and_one_after_it_sees_the_write(
    make_store: MakeStore,
) -> None:
    store = make_store(io=SeenIO)
    store.advertise(public(register_id(), now_micros()))
    before = store.available_json()
    holding, release = threading.Event(), threading.Event()

    def held_in_redis(ops: list[list[str]]) -> bool:  # the bulk's script call waits, the store held meanwhile
        holding.set()
        release.wait(10)
        return True

    seen_io(store).before_commit = held_in_redis

    def bulk_write_in_progress() -> None:
        store.apply_bulk([public(register_id(), now_micros())])

    writer = threading.Thread(target=bulk_write_in_progress)
    writer.start()
    assert holding.wait(10)
    started = time.monotonic()
    during = store.available_json()
    waited = time.monotonic() - started
    release.set()
    writer.join(10)

    assert waited < 1.0  # the writer holds the store for up to 10 s
    assert during == before
    assert len(orjson.loads(store.available_json())) == 2
