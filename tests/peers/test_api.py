"""The Peer API over HTTP: advertise, bulk advertise, available, auth and validation."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from peers.store import AdvertisementStore
from tests.conftest import register_id

pytestmark = pytest.mark.django_db

BULK = "/api/registers/bulk-advertise"
AVAILABLE = "/api/registers/available"


def advertise_url(rid: str) -> str:
    return f"/api/registers/{rid}/advertise"


def item(rid: str, **fields: Any) -> dict[str, Any]:
    return {
        "registerId": rid,
        "isPublic": True,
        "name": "ledger",
        "description": "a register",
        "latestVersion": 1,
        "latestDocketVersion": 1,
        "isFullReplica": True,
        "sourceUpdatedAt": "2026-11-24T10:00:00.000001Z",
        **fields,
    }


def post_json(api: APIClient, url: str, body: Any) -> Any:
    return api.post(url, data=orjson.dumps(body), content_type="application/json")


def available_ids(api: APIClient) -> set[str]:
    response = api.get(AVAILABLE)
    assert response.status_code == 200
    return {row["registerId"] for row in response.json()}


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


# ---------------------------------------------------------------- authentication
@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz"])
def test_calls_without_valid_credentials_get_401_and_change_nothing(
    peer_store: AdvertisementStore, header: str | None
) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = post_json(client, BULK, {"advertisements": [item(register_id())]})

    assert response.status_code in (401, 403)
    assert response.status_code == 401
    assert peer_store.available() == []
    assert client.get(AVAILABLE).status_code == 401


def test_a_logged_in_django_user_may_read_available(peer_store: AdvertisementStore) -> None:
    user = User.objects.create_user("operator", password="a-long-password-123")
    client = APIClient()
    client.force_login(user)

    assert client.get(AVAILABLE).status_code == 200


# ---------------------------------------------------------------- validation
INVALID_BODIES = [
    ({"advertisements": [item("not-a-register-id")]}, "advertisements[0].registerId"),
    ({"advertisements": [item(register_id().upper())]}, "advertisements[0].registerId"),
    ({"advertisements": [item(register_id(), isPublic="yes")]}, "advertisements[0].isPublic"),
    ({"advertisements": [item(register_id(), latestVersion=-1)]}, "advertisements[0].latestVersion"),
    ({"advertisements": [item(register_id(), latestDocketVersion="3")]}, "advertisements[0].latestDocketVersion"),
    ({"advertisements": [item(register_id(), latestVersion=2**63)]}, "advertisements[0].latestVersion"),
    ({"advertisements": [item(register_id(), name="x" * 39)]}, "advertisements[0].name"),
    ({"advertisements": [item(register_id(), description="x" * 2049)]}, "advertisements[0].description"),
    ({"advertisements": [item(register_id(), sourceUpdatedAt="yesterday")]}, "advertisements[0].sourceUpdatedAt"),
    ({"advertisements": [item(register_id())], "fullSync": "true"}, "fullSync"),
    ({"advertisements": [item(register_id())], "snapshotAt": 12}, "snapshotAt"),
    ({"advertisements": "all of them"}, "advertisements"),
    ({}, "advertisements"),
]


@pytest.mark.parametrize(("body", "field"), INVALID_BODIES)
def test_a_malformed_bulk_body_gets_400_naming_the_field_and_applies_nothing(
    api: APIClient, peer_store: AdvertisementStore, body: dict[str, Any], field: str
) -> None:
    valid_first = (
        {"advertisements": [item(register_id()), *body.get("advertisements", [])]}
        if isinstance(body.get("advertisements"), list)
        else body
    )
    request = {**body, **valid_first}

    response = post_json(api, BULK, request)

    assert response.status_code == 400
    detail = response.json()["detail"]
    expected = field.replace("[0]", "[1]") if isinstance(body.get("advertisements"), list) and "[0]" in field else field
    assert detail.startswith(expected), detail
    assert peer_store.available() == []


def test_more_items_than_the_limit_get_400(api: APIClient, peer_store: AdvertisementStore, settings: Any) -> None:
    from peers.api import schemas

    limit = schemas.BulkAdvertiseRequest.model_fields["advertisements"].metadata[0].max_length
    body = {"advertisements": [item(register_id()) for _ in range(limit + 1)]}

    response = post_json(api, BULK, body)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("advertisements:")
    assert peer_store.available() == []


def test_a_body_that_is_not_json_gets_400(api: APIClient, peer_store: AdvertisementStore) -> None:
    response = api.post(BULK, data=b"{not json", content_type="application/json")

    assert response.status_code == 400
    assert peer_store.available() == []


def test_a_body_over_the_size_limit_gets_413(api: APIClient, peer_store: AdvertisementStore, settings: Any) -> None:
    settings.SORCHA_MAX_BODY_BYTES = 1_000
    body = {"advertisements": [item(register_id()) for _ in range(20)]}

    response = post_json(api, BULK, body)

    assert response.status_code == 413
    assert peer_store.available() == []


def test_a_bad_register_id_in_the_path_gets_400(api: APIClient, peer_store: AdvertisementStore) -> None:
    response = post_json(api, advertise_url("NOT-HEX"), {"isPublic": True})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("registerId:")
    assert api.delete(advertise_url("NOT-HEX")).status_code == 400


def test_single_advertise_without_is_public_gets_400(api: APIClient, peer_store: AdvertisementStore) -> None:
    response = post_json(api, advertise_url(register_id()), {"name": "x"})

    assert response.status_code == 400
    assert response.json()["detail"].startswith("isPublic:")
    assert peer_store.available() == []


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
