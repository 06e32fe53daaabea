"""Time is bounded at the Peer API (issue 10, cases 1-3): a client's timestamps lie between 2000-01-01
and this node's clock plus CLOCK_SKEW_MAX, or the request gets 400 and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from peers.store import AdvertisementStore
from tests.conftest import register_id
from tests.peers.api_helpers import BULK, advertise_url, available_ids, item, moment, post_json, store_state

pytestmark = pytest.mark.django_db

OVERFLOWS_IN_UTC = "9999-12-31T23:59:59.999999-23:59"
OUT_OF_BOUNDS_MOMENTS = [
    pytest.param(lambda: moment(days=1), "CLOCK_SKEW_MAX", id="one-day-ahead"),
    pytest.param(lambda: moment(seconds=400), "CLOCK_SKEW_MAX", id="400-s-ahead"),
    pytest.param(lambda: "2099-01-01T00:00:00Z", "CLOCK_SKEW_MAX", id="year-2099"),
    pytest.param(lambda: OVERFLOWS_IN_UTC, "CLOCK_SKEW_MAX", id="overflows-in-utc"),
    pytest.param(lambda: "0001-01-01T00:00:00Z", "2000-01-01", id="year-0001"),
    pytest.param(lambda: "0001-01-01T00:00:00+23:59", "2000-01-01", id="year-0001-underflows-in-utc"),
    pytest.param(lambda: "1999-12-31T23:59:59.999999Z", "2000-01-01", id="just-before-2000"),
]


@pytest.mark.parametrize(("when", "why"), OUT_OF_BOUNDS_MOMENTS)
def test_a_full_sync_snapshot_out_of_bounds_gets_400_and_changes_nothing(
    api: APIClient, peer_store: AdvertisementStore, when: Any, why: str
) -> None:
    # given
    kept = register_id()
    post_json(api, BULK, {"advertisements": [item(kept)], "fullSync": True, "snapshotAt": moment(minutes=-1)})
    before = store_state(peer_store)

    # when
    response = post_json(api, BULK, {"advertisements": [item(register_id())], "fullSync": True, "snapshotAt": when()})

    # then
    assert response.status_code == 400
    assert response.json()["detail"].startswith("snapshotAt: "), response.json()
    assert why in response.json()["detail"]
    assert store_state(peer_store) == before


@pytest.mark.parametrize(("when", "why"), OUT_OF_BOUNDS_MOMENTS)
def test_a_bulk_source_updated_at_out_of_bounds_gets_400_naming_the_item_and_applies_nothing(
    api: APIClient, peer_store: AdvertisementStore, when: Any, why: str
) -> None:
    # given
    advertisements = [item(register_id()) for _ in range(5)]
    advertisements[3]["sourceUpdatedAt"] = when()

    # when
    response = post_json(api, BULK, {"advertisements": advertisements})

    # then
    assert response.status_code == 400
    assert response.json()["detail"].startswith("advertisements[3].sourceUpdatedAt: "), response.json()
    assert why in response.json()["detail"]
    assert peer_store.available() == []


@pytest.mark.parametrize(("when", "why"), OUT_OF_BOUNDS_MOMENTS)
def test_an_advertise_source_updated_at_out_of_bounds_gets_400_and_changes_nothing(
    api: APIClient, peer_store: AdvertisementStore, when: Any, why: str
) -> None:
    # given
    rid = register_id()
    post_json(api, advertise_url(rid), {"isPublic": True, "name": "before", "sourceUpdatedAt": moment(minutes=-1)})
    before = store_state(peer_store)

    # when
    response = post_json(api, advertise_url(rid), {"isPublic": True, "name": "pinned", "sourceUpdatedAt": when()})

    # then
    assert response.status_code == 400
    assert response.json()["detail"].startswith("sourceUpdatedAt: "), response.json()
    assert why in response.json()["detail"]
    assert store_state(peer_store) == before


def test_the_bounds_themselves_are_accepted(api: APIClient, peer_store: AdvertisementStore) -> None:
    # given
    oldest, ahead = register_id(), register_id()

    # when
    first = post_json(api, advertise_url(oldest), {"isPublic": True, "sourceUpdatedAt": "2000-01-01T00:00:00Z"})
    second = post_json(
        api, BULK, {"advertisements": [item(ahead, sourceUpdatedAt=moment(seconds=240))], "snapshotAt": moment()}
    )

    # then
    assert (first.status_code, second.status_code) == (200, 200)
    assert available_ids(api) == {oldest, ahead}


def test_the_skew_allowed_ahead_is_the_clock_skew_max_setting(
    api: APIClient, peer_store: AdvertisementStore, settings: Any
) -> None:
    # given
    settings.CLOCK_SKEW_MAX = 5.0

    # when
    response = post_json(api, advertise_url(register_id()), {"isPublic": True, "sourceUpdatedAt": moment(seconds=60)})

    # then
    assert response.status_code == 400
    assert "CLOCK_SKEW_MAX (5 s)" in response.json()["detail"]
    assert peer_store.available() == []


def test_a_full_sync_a_day_ahead_does_not_block_the_next_full_sync(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given: case 1 - one full sync from a clock a day ahead, which if stored would block every full sync for a day
    refused = post_json(api, BULK, {"advertisements": [], "fullSync": True, "snapshotAt": moment(days=1)})
    rid = register_id()

    # when
    response = post_json(api, BULK, {"advertisements": [item(rid)], "fullSync": True, "snapshotAt": moment()})

    # then
    assert refused.status_code == 400
    assert response.status_code == 200
    assert available_ids(api) == {rid}


def test_a_snapshot_that_overflows_in_utc_leaves_the_store_serving(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given: case 2 - a value that, if stored, would break status, metrics and every full sync with 500s
    refused = post_json(api, BULK, {"advertisements": [], "fullSync": True, "snapshotAt": OVERFLOWS_IN_UTC})
    rid = register_id()

    # when
    status = api.get("/api/store/status")
    metrics = api.get("/metrics")
    full_sync = post_json(api, BULK, {"advertisements": [item(rid)], "fullSync": True, "snapshotAt": moment()})

    # then
    assert refused.status_code == 400
    assert (status.status_code, metrics.status_code, full_sync.status_code) == (200, 200, 200)
    assert available_ids(api) == {rid}


def test_a_push_from_2099_cannot_pin_an_advertisement_past_the_next_full_sync(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given: case 3 - a push dated 2099, which if taken would outrank every later full sync until the TTL
    rid, other = register_id(), register_id()
    post_json(api, advertise_url(rid), {"isPublic": True, "name": "real", "sourceUpdatedAt": moment(minutes=-2)})
    pinned = post_json(
        api, advertise_url(rid), {"isPublic": True, "name": "pinned", "sourceUpdatedAt": "2099-01-01T00:00:00Z"}
    )

    # when: the register turned private, so the full sync no longer lists it
    post_json(api, BULK, {"advertisements": [item(other)], "fullSync": True, "snapshotAt": moment()})

    # then
    assert pinned.status_code == 400
    assert available_ids(api) == {other}
