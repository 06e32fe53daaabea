"""A full sync by digest on the Peer Service: the store's `reconcile` and `POST /api/registers/reconcile`.

A digest page lists `(registerId, sourceUpdatedAt)`; what the store holds as stated has its TTL
refreshed (nothing rewritten; the refresh is logged as one, for the other processes) and counts as
unchanged, the rest is `needed`.
Every store runs on a real redis-server; an outage is a real TCP proxy that is cut.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from peers import store as store_module
from peers.store import AdvertisementStore, MarksLost, StaleFullSync, format_micros, now_micros
from tests.conftest import point_store_at, register_id
from tests.helpers import wait_until
from tests.peers.test_store import SeenIO, local_ids, public, seen_io
from tests.plugin import SESSION_REDIS
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

MakeStore = Callable[..., AdvertisementStore]
SECOND_US = 1_000_000
RECONCILE = "/api/registers/reconcile"
BULK = "/api/registers/bulk-advertise"


def earlier() -> int:
    """A register's updated_at a minute ago: before every snapshot taken in a test."""
    return now_micros() - 60 * SECOND_US


def seed(store: AdvertisementStore, ids: list[str], stamp: int) -> None:
    """Local advertisements pushed singly (as changes, outside any full sync)."""
    store.apply_bulk([public(rid, stamp) for rid in ids])


def digest(ids: list[str], stamp: int) -> list[tuple[str, int]]:
    return [(rid, stamp) for rid in ids]


def redis_value(store: AdvertisementStore, rid: str) -> bytes | None:
    return store.client.get(store.local_key(rid))  # type: ignore[return-value]


def pttl(store: AdvertisementStore, rid: str) -> int:
    return int(store.client.pttl(store.local_key(rid)))


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


# ---------------------------------------------------------------- over HTTP


def post_json(client: APIClient, url: str, body: Any) -> Any:
    return client.post(url, data=orjson.dumps(body), content_type="application/json")


def iso(micros: int) -> str:
    return format_micros(micros) or ""


def page(ids: list[str], stamps: list[int], **fields: Any) -> dict[str, Any]:
    return {"snapshotAt": iso(now_micros()), "registerIds": ids, "sourceUpdatedAt": stamps, **fields}


def served_state(store: AdvertisementStore) -> tuple[Any, ...]:
    return store.available(), store.status()["lastFullSync"], store.status()["heldRemovals"]


@pytest.mark.django_db
def test_reconcile_over_http_answers_the_counts_what_it_needs_and_whether_it_completed(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given
    stamp = earlier()
    held, absent = register_id(), register_id()
    seed(peer_store, [held], stamp)

    # when
    response = post_json(api, RECONCILE, page([held, absent], [stamp, stamp], final=True, total=2))

    # then
    assert response.status_code == 200
    assert response.json() == {
        "processed": 1,
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 1,
        "held": 0,
        "stale": 0,
        "needed": [absent],
        "complete": False,
    }


def future(**offset: float) -> int:
    return int((datetime.now(UTC) + timedelta(**offset)).timestamp() * SECOND_US)


JUST_BEFORE_2000 = 946_684_799_999_999
OTHER = register_id()
# (what replaces the valid body's fields, the start of the detail): the valid body lists `kept` and OTHER.
INVALID_PAGES = [
    pytest.param(lambda kept, stamp: {"sourceUpdatedAt": [stamp]}, "sourceUpdatedAt: ", id="lengths-differ"),
    pytest.param(
        lambda kept, stamp: {"registerIds": [kept, kept]},
        "registerIds[1]: duplicate of registerIds[0]",
        id="duplicate",
    ),
    pytest.param(
        lambda kept, stamp: {"sourceUpdatedAt": [stamp, future(days=1)]}, "sourceUpdatedAt[1]: ", id="a-day-ahead"
    ),
    pytest.param(
        lambda kept, stamp: {"sourceUpdatedAt": [stamp, JUST_BEFORE_2000]}, "sourceUpdatedAt[1]: ", id="before-2000"
    ),
    pytest.param(
        lambda kept, stamp: {"sourceUpdatedAt": [stamp, "2026-01-01T00:00:00Z"]}, "sourceUpdatedAt[1]: ", id="not-int"
    ),
    pytest.param(lambda kept, stamp: {"registerIds": [kept, "NOT-A-REGISTER"]}, "registerIds[1]: ", id="bad-id"),
    pytest.param(lambda kept, stamp: {"registerIds": [kept, OTHER.upper()]}, "registerIds[1]: ", id="uppercase-id"),
    pytest.param(lambda kept, stamp: {"snapshotAt": iso(future(days=1))}, "snapshotAt: ", id="snapshot-ahead"),
    pytest.param(lambda kept, stamp: {"snapshotAt": None}, "snapshotAt: ", id="snapshot-missing"),
    pytest.param(lambda kept, stamp: {"final": "yes"}, "final: ", id="final-not-bool"),
]


@pytest.mark.django_db
@pytest.mark.parametrize(("change", "detail"), INVALID_PAGES)
def test_a_malformed_digest_page_gets_400_naming_the_field_and_changes_nothing(
    api: APIClient, peer_store: AdvertisementStore, change: Callable[[str, int], dict[str, Any]], detail: str
) -> None:
    # given: a page that would refresh `kept` and, being final, sweep `unlisted`
    stamp = earlier()
    kept, unlisted = register_id(), register_id()
    seed(peer_store, [kept, unlisted], stamp)
    body = page([kept, OTHER], [stamp, stamp], final=True, total=2)
    body.update(change(kept, stamp))
    if body["snapshotAt"] is None:
        del body["snapshotAt"]
    # A refresh would put the TTL back above what is measured next.
    wait_until(lambda: pttl(peer_store, kept) < peer_store.ttl * 1000 - 100, message="the TTL running down")
    before, ttl_before = served_state(peer_store), pttl(peer_store, kept)

    # when
    response = post_json(api, RECONCILE, body)

    # then
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(detail), response.json()
    assert served_state(peer_store) == before
    assert pttl(peer_store, kept) <= ttl_before
    assert not list(peer_store.client.scan_iter(match=f"{peer_store.prefix}:marks:*"))


@pytest.mark.django_db
def test_a_stale_final_page_over_http_gets_409_naming_snapshot_at_and_sweeps_nothing(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given
    stamp = earlier()
    listed, unlisted = register_id(), register_id()
    seed(peer_store, [listed, unlisted], stamp)
    stale_snapshot = now_micros() - 10 * SECOND_US
    peer_store.apply_bulk([public(listed, stamp), public(unlisted, stamp)], full_sync=True, snapshot_at=now_micros())

    # when
    response = post_json(api, RECONCILE, page([listed], [stamp], snapshotAt=iso(stale_snapshot), final=True, total=1))

    # then
    assert response.status_code == 409
    assert response.json()["detail"].startswith("snapshotAt: ")
    assert local_ids(peer_store) == {listed, unlisted}


@pytest.mark.django_db
def test_a_final_page_over_http_whose_earlier_marks_are_missing_gets_409_naming_total_and_sweeps_nothing(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given
    stamp = earlier()
    listed = [register_id() for _ in range(3)]
    unlisted = register_id()
    seed(peer_store, [*listed, unlisted], stamp)

    # when: the final page says the sync listed three, but no earlier page arrived
    response = post_json(api, RECONCILE, page(listed[2:], [stamp], final=True, total=3))

    # then
    assert response.status_code == 409
    assert response.json()["detail"].startswith("total: ")
    assert local_ids(peer_store) == {*listed, unlisted}


@pytest.mark.django_db
@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789"])
def test_reconcile_without_valid_credentials_gets_401_and_sweeps_nothing(
    peer_store: AdvertisementStore, header: str | None
) -> None:
    # given
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)
    unlisted = register_id()
    seed(peer_store, [unlisted], earlier())

    # when
    response = post_json(client, RECONCILE, page([], [], final=True, total=0))

    # then
    assert response.status_code == 401
    assert local_ids(peer_store) == {unlisted}
    assert peer_store.status()["lastFullSync"] is None


@pytest.mark.django_db
@pytest.mark.parametrize(("is_staff", "status"), [(False, 403), (True, 200)])
def test_only_the_service_or_a_staff_user_may_reconcile(
    peer_store: AdvertisementStore, is_staff: bool, status: int
) -> None:
    # given
    user = User.objects.create_user("someone", password="a-long-password-123", is_staff=is_staff)
    client = APIClient()
    client.force_login(user)
    stamp = earlier()
    held = register_id()
    seed(peer_store, [held], stamp)

    # when
    response = post_json(client, RECONCILE, page([held], [stamp], final=True, total=1))

    # then
    assert response.status_code == status
    assert (peer_store.status()["lastFullSync"] is not None) is is_staff


@pytest.mark.django_db
def test_reconcile_answers_503_with_retry_after_when_redis_is_unreachable(
    api: APIClient, settings: Any, private_redis: RedisServer, redis_proxy: TcpProxy, prefix: str
) -> None:
    # given: the process's store reaches Redis through a proxy, which is cut
    point_store_at(settings, redis_proxy.url)
    settings.REDIS_KEY_PREFIX = prefix
    settings.STORE_BREAKER_COOLDOWN = 60.0
    store_module.reset_store()
    try:
        stamp = earlier()
        held = register_id()
        seed(store_module.get_store(), [held], stamp)
        redis_proxy.cut()

        # when
        response = post_json(api, RECONCILE, page([held], [stamp], final=True, total=1))

        # then
        assert response.status_code == 503
        assert int(response["Retry-After"]) > 0
        assert response.json()["detail"].startswith("snapshotAt: ")
    finally:
        store_module.reset_store()
