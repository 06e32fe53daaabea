"""A full sync by digest over HTTP: `POST /api/registers/reconcile` (its answers, validation, access
and outage); what the store does with a digest is in test_reconcile.py.

Every store runs on a real redis-server; an outage is a real TCP proxy that is cut.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from peers import store as store_module
from peers.store import AdvertisementStore, format_micros, now_micros
from tests.conftest import point_store_at, register_id
from tests.helpers import wait_until
from tests.peers.store_io import SECOND_US, earlier, local_ids, pttl, public, seed
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy

RECONCILE = "/api/registers/reconcile"
BULK = "/api/registers/bulk-advertise"


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
