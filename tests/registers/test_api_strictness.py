"""The Register API refuses what it cannot read exactly (issue 10, case 12): bounded pagination,
JSON bodies only, ids matched in full. Each refusal is a 4xx naming the parameter and changes nothing."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from registers.models import Register
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db

LIST = "/api/registers/"


def assert_400_naming(response: Any, param: str) -> None:
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith(f"{param}:"), response.json()


# ---------------------------------------------------------------- limit and offset
@pytest.mark.parametrize(
    ("param", "value"),
    [
        pytest.param("limit", "9223372036854775808", id="limit-over-64-bits"),
        pytest.param("offset", "9223372036854775808", id="offset-over-64-bits"),
        pytest.param("limit", "1001", id="limit-over-the-cap"),
        pytest.param("limit", "0", id="limit-zero"),
        pytest.param("limit", "-1", id="limit-negative"),
        pytest.param("offset", "-1", id="offset-negative"),
        pytest.param("limit", "null", id="limit-null"),
        pytest.param("offset", "null", id="offset-null"),
        pytest.param("limit", "", id="limit-empty"),
        pytest.param("limit", "2.5", id="limit-not-whole"),
        pytest.param("limit", "1e3", id="limit-exponent"),
        pytest.param("offset", " 1", id="offset-with-a-space"),
        pytest.param("limit", "٣", id="limit-arabic-digit"),
    ],
)
def test_a_limit_or_offset_that_is_not_a_bounded_integer_is_400_naming_it(
    api_client: APIClient, param: str, value: str
) -> None:
    # given
    make_register()

    # when
    response = api_client.get(LIST, {param: value})

    # then
    assert_400_naming(response, param)


def test_the_largest_limit_is_accepted(api_client: APIClient) -> None:
    # given
    make_register()

    # when
    response = api_client.get(LIST, {"limit": "1000", "offset": "0"})

    # then
    assert response.status_code == 200
    assert response.json()["count"] == 1


def test_the_limit_cap_is_the_setting(api_client: APIClient) -> None:
    # given
    make_register()

    # when
    with override_settings(SORCHA_LIST_LIMIT_MAX=5):
        over = api_client.get(LIST, {"limit": "6"})
        at = api_client.get(LIST, {"limit": "5"})

    # then
    assert_400_naming(over, "limit")
    assert "from 1 to 5" in over.json()["detail"]
    assert at.status_code == 200


def test_an_offset_past_the_end_is_an_empty_page(api_client: APIClient) -> None:
    # given
    make_register()

    # when
    response = api_client.get(LIST, {"offset": str(2**53)})

    # then
    assert response.status_code == 200
    assert response.json()["results"] == []


@pytest.mark.parametrize("value", ["yes", "true\x00", "2", "null"])
def test_an_advertise_filter_with_junk_is_400_naming_advertise(api_client: APIClient, value: str) -> None:
    # when
    response = api_client.get(LIST, {"advertise": value})

    # then
    assert_400_naming(response, "advertise")


# ---------------------------------------------------------------- JSON bodies only
FORM_BODY = {"name": "from-a-form", "advertise": "true", "isFullReplica": "true"}


@pytest.mark.parametrize("encoding", ["multipart", "form"])
def test_creating_from_a_form_is_415_and_creates_nothing(api_client: APIClient, encoding: str) -> None:
    # when
    if encoding == "multipart":
        response = api_client.post(LIST, FORM_BODY, format="multipart")
    else:
        response = api_client.post(
            LIST, "name=from-a-form&isFullReplica=true", content_type="application/x-www-form-urlencoded"
        )

    # then
    assert response.status_code == 415
    assert response.json()["detail"].startswith("Content-Type:")
    assert ("multipart/form-data" if encoding == "multipart" else "x-www-form-urlencoded") in response.json()["detail"]
    assert not Register.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_changing_from_a_form_is_415_and_changes_nothing(api_client: APIClient, method: str) -> None:
    # given: a form PUT, which would read the missing `advertise` as false and clear it
    register = make_register(name="kept", advertise=True)
    before = Register.objects.values().get(id=register.id)

    # when
    response = getattr(api_client, method)(
        f"{LIST}{register.id}/", "name=renamed", content_type="application/x-www-form-urlencoded"
    )

    # then
    assert response.status_code == 415
    assert Register.objects.values().get(id=register.id) == before


def test_an_empty_form_put_is_415_and_changes_nothing(api_client: APIClient) -> None:
    # given
    register = make_register(name="kept", advertise=True)
    before = Register.objects.values().get(id=register.id)

    # when: no body at all, but declared as a form
    response = api_client.put(f"{LIST}{register.id}/", "", content_type="application/x-www-form-urlencoded")

    # then
    assert response.status_code == 415
    assert Register.objects.values().get(id=register.id) == before


@pytest.mark.parametrize(
    "content_type",
    ["text/plain", "application/json; charset=latin-1", "application/json-patch+json", "application/jsonx"],
)
def test_a_json_body_under_another_content_type_is_415(api_client: APIClient, content_type: str) -> None:
    # when
    response = api_client.post(LIST, '{"name": "typed"}', content_type=content_type)

    # then
    assert response.status_code == 415
    assert not Register.objects.exists()


@pytest.mark.parametrize("content_type", ["application/json", "application/json; charset=utf-8", "Application/JSON"])
def test_json_with_or_without_a_utf8_charset_is_accepted(api_client: APIClient, content_type: str) -> None:
    # when
    response = api_client.post(LIST, '{"name": "typed"}', content_type=content_type)

    # then
    assert response.status_code == 201


def test_a_put_without_advertise_keeps_it(api_client: APIClient) -> None:
    # given: fields left out of a PUT keep their stored value (as on the Peer API's /advertise)
    register = make_register(name="before", advertise=True)

    # when
    response = api_client.put(f"{LIST}{register.id}/", {"name": "after"}, format="json")

    # then
    assert response.status_code == 200
    register.refresh_from_db()
    assert (register.name, register.advertise) == ("after", True)
    assert response.json()["advertise"] is True


# ---------------------------------------------------------------- unknown fields
def test_a_misspelled_field_on_create_is_400_naming_it_and_creates_nothing(api_client: APIClient) -> None:
    # when: `advertize` for `advertise`, which if ignored would create a private register
    response = api_client.post(LIST, {"name": "v2", "advertize": True}, format="json")

    # then
    assert_400_naming(response, "advertize")
    assert "unknown field" in response.json()["detail"]
    assert not Register.objects.exists()


def test_every_unknown_field_is_named(api_client: APIClient) -> None:
    # when
    response = api_client.post(LIST, {"name": "v2", "advertize": True, "fullReplica": True}, format="json")

    # then
    assert response.status_code == 400
    detail = response.json()["detail"]
    assert "advertize: unknown field" in detail and "fullReplica: unknown field" in detail
    assert not Register.objects.exists()


@pytest.mark.parametrize("method", ["put", "patch"])
def test_an_unknown_field_on_a_change_is_400_and_changes_nothing(api_client: APIClient, method: str) -> None:
    # given
    register = make_register(name="kept", advertise=True)
    before = Register.objects.values().get(id=register.id)

    # when
    response = getattr(api_client, method)(
        f"{LIST}{register.id}/", {"name": "renamed", "advertize": False}, format="json"
    )

    # then
    assert_400_naming(response, "advertize")
    assert Register.objects.values().get(id=register.id) == before


@pytest.mark.parametrize("field", ["id", "createdAt", "updatedAt"])
def test_a_read_only_field_in_a_body_is_400_naming_it(api_client: APIClient, field: str) -> None:
    # given
    register = make_register(name="kept")
    before = Register.objects.values().get(id=register.id)

    # when: a body copied from a GET carries the fields the server sets
    response = api_client.put(f"{LIST}{register.id}/", {"name": "renamed", field: "x"}, format="json")

    # then
    assert_400_naming(response, field)
    assert "read-only" in response.json()["detail"]
    assert Register.objects.values().get(id=register.id) == before


def test_every_writable_field_is_accepted(api_client: APIClient) -> None:
    # when: the Register API's own names, all of them
    response = api_client.post(
        LIST,
        {
            "name": "all-fields",
            "description": "d",
            "advertise": True,
            "isFullReplica": True,
            "latestVersion": 2,
            "latestDocketVersion": 1,
        },
        format="json",
    )

    # then
    assert response.status_code == 201, response.content


def test_a_resync_request_with_a_body_field_is_400_naming_it(api_client: APIClient) -> None:
    # when: the operation takes no body; a field sent to it is not one it knows
    response = api_client.post("/api/registers/resync/", {"reason": "startup"}, format="json")

    # then
    assert response.status_code == 400, response.content
    assert response.json()["detail"].startswith("reason: unknown field")
