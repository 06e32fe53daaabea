"""The Peer API over HTTP: advertise, bulk advertise, available, health and docs.

Who may call it: test_api_access.py; what it refuses: test_api_validation.py; the bounds on time:
test_api_time_bounds.py.
"""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from peers.store import AdvertisementStore
from tests.conftest import register_id
from tests.peers.api_helpers import AVAILABLE, BULK, advertise_url, available_ids, item, post_json

pytestmark = pytest.mark.django_db


def test_bulk_advertise_adds_and_reports_counts(api: APIClient, peer_store: AdvertisementStore) -> None:
    ids = [register_id() for _ in range(3)]

    response = post_json(api, BULK, {"advertisements": [item(rid) for rid in ids]})

    assert response.status_code == 200
    assert response.json() == {
        "processed": 3,
        "added": 3,
        "updated": 0,
        "removed": 0,
        "unchanged": 0,
        "held": 0,
        "stale": 0,
    }
    assert available_ids(api) == set(ids)


def test_full_sync_over_http_removes_local_ads_not_listed(api: APIClient, peer_store: AdvertisementStore) -> None:
    ids = [register_id() for _ in range(4)]
    post_json(
        api,
        BULK,
        {"advertisements": [item(rid) for rid in ids], "fullSync": True, "snapshotAt": "2026-11-24T10:00:01Z"},
    )

    response = post_json(
        api,
        BULK,
        {"advertisements": [item(rid) for rid in ids[:3]], "fullSync": True, "snapshotAt": "2026-11-24T10:00:02Z"},
    )

    assert response.json()["removed"] == 1
    assert available_ids(api) == set(ids[:3])


def test_a_stale_full_sync_gets_409_naming_snapshot_at(api: APIClient, peer_store: AdvertisementStore) -> None:
    kept = register_id()
    post_json(api, BULK, {"advertisements": [item(kept)], "fullSync": True, "snapshotAt": "2026-11-24T10:00:05Z"})

    response = post_json(
        api, BULK, {"advertisements": [item(register_id())], "fullSync": True, "snapshotAt": "2026-11-24T10:00:04Z"}
    )

    assert response.status_code == 409
    assert response.json()["detail"].startswith("snapshotAt:")
    assert available_ids(api) == {kept}


def test_single_advertise_returns_the_stored_advertisement(api: APIClient, peer_store: AdvertisementStore) -> None:
    rid = register_id()

    response = post_json(api, advertise_url(rid), {"isPublic": True, "name": "solo", "latestVersion": 7})

    assert response.status_code == 200
    body = response.json()
    assert (body["registerId"], body["name"], body["latestVersion"], body["outcome"]) == (rid, "solo", 7, "added")
    assert body["verified"] is True


def test_advertise_with_is_public_false_removes_it(api: APIClient, peer_store: AdvertisementStore) -> None:
    rid = register_id()
    post_json(api, advertise_url(rid), {"isPublic": True, "name": "solo"})

    response = post_json(api, advertise_url(rid) + "/", {"isPublic": False})

    assert response.status_code == 200
    assert response.json()["outcome"] == "removed"
    assert available_ids(api) == set()


def test_delete_advertise_is_idempotent(api: APIClient, peer_store: AdvertisementStore) -> None:
    rid = register_id()
    post_json(api, advertise_url(rid), {"isPublic": True, "name": "solo"})

    assert api.delete(advertise_url(rid)).status_code == 204
    assert api.delete(advertise_url(rid)).status_code == 204
    assert available_ids(api) == set()


@pytest.mark.parametrize("path", [AVAILABLE, AVAILABLE + "/", BULK, BULK + "/"])
def test_paths_work_with_and_without_a_trailing_slash(
    api: APIClient, peer_store: AdvertisementStore, path: str
) -> None:
    response = api.get(path) if "available" in path else post_json(api, path, {"advertisements": []})

    assert response.status_code == 200


def test_available_lists_local_and_remote_with_peer_counts(api: APIClient, peer_store: AdvertisementStore) -> None:
    from peers.store import AdvertisementInput

    rid, remote_only = register_id(), register_id()
    post_json(api, advertise_url(rid), {"isPublic": True, "name": "both"})
    peer_store.replace_remote(
        "peer-a", [AdvertisementInput(rid, True, name="both"), AdvertisementInput(remote_only, True, name="theirs")]
    )

    rows = {row["registerId"]: row for row in api.get(AVAILABLE).json()}

    assert rows[rid]["isLocal"] is True and rows[rid]["peerCount"] == 1
    assert rows[remote_only]["isLocal"] is False and rows[remote_only]["peerCount"] == 1


# ---------------------------------------------------------------- health and docs
def test_healthz_and_readyz_answer_without_credentials(peer_store: AdvertisementStore) -> None:
    client = APIClient()

    assert client.get("/healthz").status_code == 200
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["store"] == "ok"
    assert ready.json()["database"] == "ok"


def test_the_openapi_schema_generates_without_warnings(capsys: pytest.CaptureFixture[str]) -> None:
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--validate", "--file", "/dev/null")
