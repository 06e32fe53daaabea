"""The Peer API over HTTP: advertise, bulk advertise, available, auth and validation."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
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


# ---------------------------------------------------------------- time is bounded (issue 10, cases 1-3)
def moment(**offset: float) -> str:
    """This machine's clock moved by `offset` (timedelta keywords), as a client would send it."""
    return (datetime.now(UTC) + timedelta(**offset)).isoformat()


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


def store_state(store: AdvertisementStore) -> tuple[Any, Any]:
    return store.available(), store.status()["lastFullSync"]


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


# ---------------------------------------------------------------- ids fully matched (case 4)
@pytest.mark.parametrize("suffix", ["%0A", "%0D%0A", "%00", "%20"])
def test_a_path_register_id_with_a_trailing_character_gets_400(
    api: APIClient, peer_store: AdvertisementStore, suffix: str
) -> None:
    # given
    url = f"/api/registers/{register_id()}{suffix}/advertise"

    # when
    posted = post_json(api, url, {"isPublic": True, "name": "x"})
    deleted = api.delete(url)

    # then
    assert (posted.status_code, deleted.status_code) == (400, 400)
    assert posted.json()["detail"].startswith("registerId:")
    assert peer_store.available() == []


@pytest.mark.parametrize("suffix", ["\n", "\r\n", "\x00", " "])
def test_a_body_register_id_with_a_trailing_character_gets_400(
    api: APIClient, peer_store: AdvertisementStore, suffix: str
) -> None:
    # when
    response = post_json(api, BULK, {"advertisements": [item(register_id()), item(register_id() + suffix)]})

    # then
    assert response.status_code == 400
    assert response.json()["detail"].startswith("advertisements[1].registerId:")
    assert peer_store.available() == []


# ---------------------------------------------------------------- one register once per bulk (case 10)
def test_a_register_listed_twice_in_one_bulk_gets_400_naming_both_indexes(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given
    advertisements = [item(register_id()) for _ in range(8)]
    advertisements[7] = item(advertisements[2]["registerId"], name="second")

    # when
    response = post_json(api, BULK, {"advertisements": advertisements, "fullSync": True, "snapshotAt": moment()})

    # then
    assert response.status_code == 400
    assert response.json()["detail"] == "advertisements[7].registerId: duplicate of advertisements[2]"
    assert store_state(peer_store) == ([], None)


# ---------------------------------------------------------------- text and numbers (case 11)
BAD_ADVERTISEMENT_FIELDS = [
    pytest.param("name", "led\x00ger", "must not contain NUL characters", id="nul-in-name"),
    pytest.param("description", "a\x00", "must not contain NUL characters", id="nul-in-description"),
    pytest.param("name", "", "must not be blank", id="empty-name"),
    pytest.param("name", " \t ", "must not be blank", id="blank-name"),
    pytest.param("latestVersion", 2**53 + 1, "less than or equal to 9007199254740992", id="version-over-2^53"),
    pytest.param("latestDocketVersion", 2**53 + 1, "less than or equal to", id="docket-version-over-2^53"),
]


@pytest.mark.parametrize(("field", "value", "why"), BAD_ADVERTISEMENT_FIELDS)
def test_a_bad_text_or_number_in_a_bulk_gets_400_naming_it(
    api: APIClient, peer_store: AdvertisementStore, field: str, value: Any, why: str
) -> None:
    # when
    response = post_json(api, BULK, {"advertisements": [item(register_id()), item(register_id(), **{field: value})]})

    # then
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"advertisements[1].{field}: "), response.json()
    assert why in response.json()["detail"]
    assert peer_store.available() == []


@pytest.mark.parametrize(("field", "value", "why"), BAD_ADVERTISEMENT_FIELDS)
def test_a_bad_text_or_number_on_advertise_gets_400_naming_it(
    api: APIClient, peer_store: AdvertisementStore, field: str, value: Any, why: str
) -> None:
    # when
    response = post_json(api, advertise_url(register_id()), {"isPublic": True, field: value})

    # then
    assert response.status_code == 400
    assert response.json()["detail"].startswith(f"{field}: "), response.json()
    assert peer_store.available() == []


def test_the_largest_version_and_a_blank_description_are_accepted(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # when
    response = post_json(
        api, advertise_url(register_id()), {"isPublic": True, "latestVersion": 2**53, "description": ""}
    )

    # then
    assert response.status_code == 200
    assert response.json()["latestVersion"] == 2**53


@pytest.mark.parametrize(
    ("field", "value"),
    [("name", "a\x00b"), ("name", "   "), ("description", "\x00"), ("latestVersion", 2**53 + 1), ("name", 12)],
)
def test_both_apis_refuse_the_same_register_fields(
    api: APIClient, peer_store: AdvertisementStore, field: str, value: Any
) -> None:
    # given
    from registers.models import Register

    # when
    register_api = post_json(api, "/api/registers/", {"name": "ledger", field: value})
    peer_api = post_json(api, advertise_url(register_id()), {"isPublic": True, "name": "ledger", field: value})

    # then
    assert (register_api.status_code, peer_api.status_code) == (400, 400)
    assert register_api.json()["detail"].startswith(f"{field}:")
    assert peer_api.json()["detail"].startswith(f"{field}:")
    assert not Register.objects.exists()
    assert peer_store.available() == []


# ---------------------------------------------------------------- JSON bodies only (case 12)
@pytest.mark.parametrize(
    "content_type",
    [
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=x",
        "text/plain",
        "application/json; charset=latin-1",
    ],
)
@pytest.mark.parametrize("path", [BULK, "advertise"])
def test_a_body_not_sent_as_json_gets_415_naming_the_content_type(
    api: APIClient, peer_store: AdvertisementStore, content_type: str, path: str
) -> None:
    # given
    rid = register_id()
    url, body = (BULK, {"advertisements": [item(rid)]}) if path == BULK else (advertise_url(rid), item(rid))

    # when
    response = api.post(url, data=orjson.dumps(body), content_type=content_type)

    # then
    assert response.status_code == 415
    assert response.json()["detail"].startswith("Content-Type: "), response.json()
    assert content_type.split(";")[0] in response.json()["detail"]
    assert peer_store.available() == []


def test_json_with_a_utf8_charset_is_accepted(api: APIClient, peer_store: AdvertisementStore) -> None:
    # when
    response = api.post(
        BULK,
        data=orjson.dumps({"advertisements": [item(register_id())]}),
        content_type="application/json; charset=UTF-8",
    )

    # then
    assert response.status_code == 200


# ---------------------------------------------------------------- who may write (issue 11)
def session_client(**flags: bool) -> APIClient:
    user = User.objects.create_user("someone", password="a-long-password-123", **flags)
    client = APIClient()
    client.force_login(user)
    return client


def test_a_logged_in_user_who_is_not_staff_may_not_write(peer_store: AdvertisementStore) -> None:
    # given
    client = session_client()
    rid = register_id()

    # when
    bulk = post_json(client, BULK, {"advertisements": [item(rid)]})
    advertised = post_json(client, advertise_url(rid), {"isPublic": True})
    deleted = client.delete(advertise_url(rid))

    # then
    assert (bulk.status_code, advertised.status_code, deleted.status_code) == (403, 403, 403)
    assert peer_store.available() == []


def test_a_logged_in_user_who_is_not_staff_may_read(peer_store: AdvertisementStore) -> None:
    # given
    client = session_client()

    # when / then
    assert client.get(AVAILABLE).status_code == 200
    assert client.get("/api/store/status").status_code == 200


def test_a_non_staff_user_may_not_delete_an_advertisement(api: APIClient, peer_store: AdvertisementStore) -> None:
    # given
    rid = register_id()
    post_json(api, advertise_url(rid), {"isPublic": True})

    # when
    response = session_client().delete(advertise_url(rid))

    # then
    assert response.status_code == 403
    assert available_ids(api) == {rid}


def test_a_staff_user_may_write(peer_store: AdvertisementStore) -> None:
    # given
    client = session_client(is_staff=True)
    rid = register_id()

    # when
    response = post_json(client, BULK, {"advertisements": [item(rid)]})

    # then
    assert response.status_code == 200
    assert {row["registerId"] for row in peer_store.available()} == {rid}
