"""The store while Redis is away and when it comes back (FR-010): answers from memory, the journal and
its replay, the write-back to a Redis back empty or restored from an older dump.

Every store here runs on a real redis-server that is stopped, restarted or restored; "two processes"
are two stores sharing a prefix, and a partition of one of them is a real TCP proxy that is cut.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from peers.store import AdvertisementInput, now_micros
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.peers.store_io import MakeStore, ids_listed, local_ids, public, redis_local_ids
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy


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


# ---------------------------------------------------------------- recovery with what is left
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


# ---------------------------------------------------------------- Redis back in time
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
