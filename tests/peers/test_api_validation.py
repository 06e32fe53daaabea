"""What the Peer API refuses, naming the field, with nothing applied: malformed bodies, register ids,
a register listed twice, bad text and numbers, bodies not sent as JSON."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from peers.store import AdvertisementStore
from tests.conftest import register_id
from tests.peers.api_helpers import BULK, advertise_url, item, moment, post_json, store_state

pytestmark = pytest.mark.django_db


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
