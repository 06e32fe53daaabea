"""A full sync by digest in the Peer Service's store: `reconcile` (over HTTP: test_reconcile_api.py).

A digest page lists `(registerId, sourceUpdatedAt)`; what the store holds as stated has its TTL
refreshed (nothing rewritten; the refresh is logged as one, for the other processes) and counts as
unchanged, the rest is `needed`.
Every store runs on a real redis-server.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from peers.store import AdvertisementStore, MarksLost, StaleFullSync, now_micros
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.peers.store_io import SECOND_US, MakeStore, SeenIO, earlier, local_ids, pttl, public, seed, seen_io
from tests.plugin import SESSION_REDIS


def digest(ids: list[str], stamp: int) -> list[tuple[str, int]]:
    return [(rid, stamp) for rid in ids]


def redis_value(store: AdvertisementStore, rid: str) -> bytes | None:
    return store.client.get(store.local_key(rid))  # type: ignore[return-value]


def log_entries(store: AdvertisementStore) -> list[dict[bytes, bytes]]:
    """The fields of every entry of the change log, oldest first."""
    return [fields for _, fields in store.client.xrange(store.keys.log)]


def marks(store: AdvertisementStore, snapshot_at: int) -> set[str]:
    raw = store.client.get(store.keys.mark(snapshot_at))
    return set(raw.decode().split()) if raw else set()  # type: ignore[union-attr]


# ---------------------------------------------------------------- held as stated: a refresh, not a rewrite
def test_an_unchanged_digest_page_refreshes_the_ttl_in_redis_without_rewriting_and_logs_it_as_a_refresh(
    make_store: MakeStore,
) -> None:
    # given: three advertisements a second into a three-second TTL, and every script call the store sends seen
    store = make_store(ttl=3.0, io=SeenIO)
    ids, stamp = [register_id() for _ in range(3)], earlier()
    seed(store, ids, stamp)
    wait_until(lambda: all(pttl(store, rid) < 2_300 for rid in ids), message="the TTLs running down")
    values = {rid: redis_value(store, rid) for rid in ids}
    logged_before = len(log_entries(store))
    sent_before = len(seen_io(store).batches)

    # when: a non-final page lists them with the stamps the store holds
    answer = store.reconcile(digest(ids, stamp), snapshot_at=now_micros(), final=False)

    # then: counted unchanged, nothing needed, the TTL back near full, the values untouched: the store sent
    # only refreshes (and the page's marks), no write of a value, and the log says a refresh of these ids
    # (its field r) that changed no key (its field k empty), so the other processes move lastSeen alike
    assert (answer.result.processed, answer.result.unchanged, answer.needed, answer.complete) == (3, 3, [], False)
    assert all(pttl(store, rid) > 2_700 for rid in ids)
    assert {rid: redis_value(store, rid) for rid in ids} == values
    sent = [op[0] for batch in seen_io(store).batches[sent_before:] for op in batch]
    assert "T" in sent and set(sent) <= {"T", "A", "H"}, sent
    logged = log_entries(store)[logged_before:]
    assert len(logged) == 1
    assert sorted(logged[0][b"r"].decode().split()) == sorted(ids)
    assert int(logged[0][b"x"]) == round(store.local_advertisement(ids[0]).expires_at * 1000)  # type: ignore[union-attr]
    assert logged[0][b"k"] == b""


def test_a_refresh_is_sent_in_script_calls_of_at_most_a_thousand_ids_so_no_read_waits_long_behind_one(
    make_store: MakeStore,
) -> None:
    # given: 2,500 advertisements held as stated, and every script call the store sends seen on its way
    store = make_store(io=SeenIO)
    ids, stamp = [register_id() for _ in range(2_500)], earlier()
    seed(store, ids, stamp)
    sent_before = len(seen_io(store).batches)

    # when: a digest page lists them all
    answer = store.reconcile(digest(ids, stamp), snapshot_at=now_micros(), final=False)

    # then: every one refreshed, in calls of at most 1,000 (Redis runs one script at a time)
    refreshed = [op[3:] for batch in seen_io(store).batches[sent_before:] for op in batch if op[0] == "T"]
    assert answer.result.unchanged == 2_500
    assert sorted(rid for call in refreshed for rid in call) == sorted(ids)
    assert [len(call) for call in refreshed] == [1_000, 1_000, 500]


def test_an_unchanged_final_digest_page_refreshes_the_mirror_needs_nothing_and_completes(
    make_store: MakeStore,
) -> None:
    # given
    store = make_store(ttl=3.0)
    ids, stamp = [register_id() for _ in range(3)], earlier()
    seed(store, ids, stamp)
    wait_until(lambda: all(pttl(store, rid) < 2_300 for rid in ids), message="the TTLs running down")
    expiring_at = {rid: store.local_advertisement(rid).expires_at for rid in ids}  # type: ignore[union-attr]
    refreshed_from = time.time()

    # when
    answer = store.reconcile(digest(ids, stamp), snapshot_at=now_micros(), final=True, total=3)

    # then
    assert (answer.result.unchanged, answer.result.removed, answer.needed, answer.complete) == (3, 0, [], True)
    for rid in ids:
        entry = store.local_advertisement(rid)
        assert entry is not None and entry.verified
        assert entry.refreshed_at >= refreshed_from
        assert entry.expires_at >= refreshed_from + 3.0 > expiring_at[rid] + 0.5
        assert pttl(store, rid) > 2_700
    assert store.status()["lastFullSync"]["result"]["unchanged"] == 3


def test_a_digest_needs_exactly_the_absent_the_expired_and_the_differently_stamped_registers(
    make_store: MakeStore,
) -> None:
    # given: one advertisement left to expire, then three held, with one stamp older and one newer than the source's
    store = make_store(ttl=1.5)
    stamp = earlier()
    expired, held, older, newer, absent = (register_id() for _ in range(5))
    seed(store, [expired], stamp)
    # Redis lets it go no earlier than the mirror does (the mirror counts from before the write)
    wait_until(lambda: pttl(store, expired) < 0, message="the advertisement expired")
    seed(store, [held], stamp)
    seed(store, [older], stamp - SECOND_US)
    seed(store, [newer], stamp + SECOND_US)

    # when
    listed = digest([expired, held, older, newer, absent], stamp)
    answer = store.reconcile(listed, snapshot_at=now_micros(), final=False)

    # then
    assert sorted(answer.needed) == sorted([expired, older, newer, absent])
    assert (answer.result.processed, answer.result.unchanged) == (1, 1)


# ---------------------------------------------------------------- what a final page sweeps, and when
def test_a_final_page_that_needs_registers_sweeps_nothing_and_marks_every_listed_id(make_store: MakeStore) -> None:
    # given
    store = make_store()
    stamp = earlier()
    held = [register_id() for _ in range(2)]
    unlisted, absent = register_id(), register_id()
    seed(store, [*held, unlisted], stamp)
    snapshot = now_micros()

    # when
    answer = store.reconcile(digest([*held, absent], stamp), snapshot_at=snapshot, final=True, total=3)

    # then
    assert (answer.needed, answer.complete, answer.result.removed) == ([absent], False, 0)
    assert local_ids(store) == {*held, unlisted}
    assert marks(store, snapshot) == {*held, absent}
    assert store.status()["lastFullSync"] is None


def test_the_bulk_request_finishing_a_digest_sync_sweeps_only_what_no_page_listed(make_store: MakeStore) -> None:
    # given: a final digest page that needed one register
    store = make_store()
    stamp = earlier()
    held = [register_id() for _ in range(2)]
    unlisted, absent = register_id(), register_id()
    seed(store, [*held, unlisted], stamp)
    snapshot = now_micros()
    store.reconcile(digest([*held, absent], stamp), snapshot_at=snapshot, final=True, total=3)

    # when: the source sends it in full with the same snapshot, fullSync and total
    result = store.apply_bulk([public(absent, stamp)], full_sync=True, snapshot_at=snapshot, total=3)

    # then
    assert (result.added, result.removed, result.held) == (1, 1, 0)
    assert local_ids(store) == {*held, absent}
    assert store.client.exists(store.local_key(unlisted)) == 0


def test_two_pages_and_a_final_page_that_needs_nothing_sweep_exactly_the_unlisted(make_store: MakeStore) -> None:
    # given
    store = make_store()
    stamp = earlier()
    listed = [register_id() for _ in range(7)]
    unlisted = register_id()
    seed(store, [*listed, unlisted], stamp)
    snapshot = now_micros()

    # when
    first = store.reconcile(digest(listed[:3], stamp), snapshot_at=snapshot, final=False)
    second = store.reconcile(digest(listed[3:6], stamp), snapshot_at=snapshot, final=False)
    last = store.reconcile(digest(listed[6:], stamp), snapshot_at=snapshot, final=True, total=7)

    # then
    assert (first.complete, second.complete, last.complete) == (False, False, True)
    assert (last.result.removed, last.result.held) == (1, 0)
    assert local_ids(store) == set(listed)
    assert store.client.exists(store.keys.mark(snapshot)) == 0  # the marks are cleared once swept


def test_a_final_page_whose_total_exceeds_the_marks_is_refused_as_marks_lost_and_sweeps_nothing(
    make_store: MakeStore,
) -> None:
    # given: two pages of a sync of seven arrived, the third never did
    store = make_store()
    stamp = earlier()
    listed = [register_id() for _ in range(7)]
    unlisted = register_id()
    seed(store, [*listed, unlisted], stamp)
    snapshot = now_micros()
    store.reconcile(digest(listed[:3], stamp), snapshot_at=snapshot, final=False)

    # when
    with pytest.raises(MarksLost):
        store.reconcile(digest(listed[6:], stamp), snapshot_at=snapshot, final=True, total=7)

    # then
    assert local_ids(store) == {*listed, unlisted}
    assert store.status()["lastFullSync"] is None


def test_a_stale_snapshot_on_a_final_page_is_refused_and_changes_nothing(make_store: MakeStore) -> None:
    # given: a full sync applied at a snapshot newer than the digest's
    store = make_store()
    stamp = earlier()
    listed, unlisted = register_id(), register_id()
    seed(store, [listed, unlisted], stamp)
    stale_snapshot = now_micros() - 10 * SECOND_US
    store.apply_bulk([public(listed, stamp), public(unlisted, stamp)], full_sync=True, snapshot_at=now_micros())
    state = store.status()["lastFullSync"]
    wait_until(lambda: pttl(store, listed) < store.ttl * 1000 - 100, message="the TTL running down")
    ttl_before = pttl(store, listed)

    # when
    with pytest.raises(StaleFullSync):
        store.reconcile(digest([listed], stamp), snapshot_at=stale_snapshot, final=True, total=1)

    # then: nothing swept, recorded, marked or refreshed
    assert local_ids(store) == {listed, unlisted}
    assert store.status()["lastFullSync"] == state
    assert store.client.exists(store.keys.mark(stale_snapshot)) == 0
    assert pttl(store, listed) <= ttl_before


@pytest.mark.parametrize("how", ["digest", "plain"])
def test_the_mass_removal_guard_holds_a_digest_sweep_of_most_of_the_pool_as_it_holds_a_plain_one(
    make_store: MakeStore, how: str
) -> None:
    # given: ten advertisements, of which the source lists two
    store = make_store()
    stamp = earlier()
    ids = [register_id() for _ in range(10)]
    seed(store, ids, stamp)
    kept = ids[:2]

    def sync() -> Any:
        if how == "digest":
            answer = store.reconcile(digest(kept, stamp), snapshot_at=now_micros(), final=True, total=2)
            assert answer.complete
            return answer.result
        return store.apply_bulk([public(rid, stamp) for rid in kept], full_sync=True, snapshot_at=now_micros())

    # when
    held = sync()

    # then: held, not removed, until the next full sync confirms it
    assert (held.removed, held.held) == (0, 8)
    assert local_ids(store) == set(ids)
    assert store.status()["heldRemovals"] == sorted(ids[2:])
    confirmed = sync()
    assert (confirmed.removed, confirmed.held) == (8, 0)
    assert local_ids(store) == set(kept)


def test_a_key_gone_from_redis_behind_the_mirror_is_needed_not_unchanged_and_the_final_page_is_not_complete(
    make_store: MakeStore,
) -> None:
    # given: Redis lost one key the mirror still holds (no change announced)
    store = make_store()
    stamp = earlier()
    vanished, held, unlisted = register_id(), register_id(), register_id()
    seed(store, [vanished, held, unlisted], stamp)
    store.client.delete(store.local_key(vanished))
    assert store.local_advertisement(vanished) is not None
    snapshot = now_micros()

    # when
    answer = store.reconcile(digest([vanished, held], stamp), snapshot_at=snapshot, final=True, total=2)

    # then
    assert (answer.needed, answer.complete) == ([vanished], False)
    assert (answer.result.processed, answer.result.unchanged) == (1, 1)
    assert store.local_advertisement(vanished) is None
    assert local_ids(store) == {held, unlisted}
    assert marks(store, snapshot) == {vanished, held}


# ---------------------------------------------------------------- a digest sync and a plain one agree
@pytest.fixture
def make_pool() -> Iterator[Callable[[], AdvertisementStore]]:
    """Stores each on a prefix of its own: independent Peer Services on the same Redis."""
    created: list[AdvertisementStore] = []

    def build() -> AdvertisementStore:
        store = AdvertisementStore(SESSION_REDIS.url, f"t{uuid.uuid4().hex[:12]}", 300.0, breaker_cooldown=0.2)
        created.append(store)
        return store

    yield build
    for store in created:
        store.close()


def sync_both_ways(
    make_pool: Callable[[], AdvertisementStore],
) -> tuple[AdvertisementStore, AdvertisementStore, set[str]]:
    """Two Peer Services holding the same (three as the source states them, one outdated, one unlisted): one
    gets a digest and then the registers it needs, the other every register in full, at the same snapshot."""
    stamp = earlier()
    same = [register_id() for _ in range(3)]
    changed, added, unlisted = register_id(), register_id(), register_id()
    by_digest, plain = make_pool(), make_pool()
    for store in (by_digest, plain):
        seed(store, [*same, unlisted], stamp)
        seed(store, [changed], stamp - SECOND_US)
    source = [public(rid, stamp) for rid in [*same, changed, added]]
    total = len(source)
    snapshot = now_micros()
    answer = by_digest.reconcile(digest([*same, changed, added], stamp), snapshot_at=snapshot, final=True, total=total)
    needed = [advertisement for advertisement in source if advertisement.register_id in answer.needed]
    by_digest.apply_bulk(needed, full_sync=True, snapshot_at=snapshot, total=total)
    plain.apply_bulk(source, full_sync=True, snapshot_at=snapshot, total=total)
    return by_digest, plain, {*same, changed, added}


def test_a_digest_full_sync_and_a_plain_full_sync_of_the_same_set_leave_the_same_advertisements(
    make_pool: Callable[[], AdvertisementStore],
) -> None:
    # given / when
    by_digest, plain, source_ids = sync_both_ways(make_pool)

    # then
    def held(store: AdvertisementStore) -> dict[str, Any]:
        return {e.register_id: (e.source_updated_at, e.value) for e in store.local_advertisements()}

    assert held(by_digest) == held(plain)
    assert set(held(plain)) == source_ids


def test_a_digest_full_sync_and_a_plain_full_sync_of_the_same_set_record_the_same_last_full_sync_counts(
    make_pool: Callable[[], AdvertisementStore],
) -> None:
    # given / when
    by_digest, plain, _ = sync_both_ways(make_pool)

    # then: the status an operator reads counts the whole sync either way (5 processed, 3 of them unchanged)
    digest_result = by_digest.status()["lastFullSync"]["result"]
    plain_result = plain.status()["lastFullSync"]["result"]
    assert plain_result == {
        "processed": 5,
        "added": 1,
        "updated": 1,
        "removed": 1,
        "unchanged": 3,
        "held": 0,
        "stale": 0,
    }
    assert digest_result == plain_result
