"""Every invalid body is a 400 that names the field, and nothing is created or changed."""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from registers.models import Register
from sorcha_site.bounds import MAX_VERSION
from tests.registers.factories import make_register, register_body

pytestmark = pytest.mark.django_db

TOO_BIG = 2**63

INVALID_FIELDS = [
    pytest.param("name", "", id="empty-name"),
    pytest.param("name", "   ", id="blank-name"),
    pytest.param("name", "n" * 39, id="39-char-name"),
    pytest.param("name", None, id="null-name"),
    pytest.param("name", "led\x00ger", id="nul-in-name"),
    pytest.param("name", 12, id="name-not-a-string"),
    pytest.param("description", "d" * 2049, id="2049-char-description"),
    pytest.param("description", None, id="null-description"),
    pytest.param("description", "a\x00b", id="nul-in-description"),
    pytest.param("latestVersion", -1, id="negative-version"),
    pytest.param("latestVersion", TOO_BIG, id="version-over-2^63-1"),
    pytest.param("latestVersion", MAX_VERSION + 1, id="version-over-2^53"),
    pytest.param("latestVersion", "seven", id="version-not-a-number"),
    pytest.param("latestVersion", "7", id="version-a-string"),
    pytest.param("latestVersion", 7.0, id="version-a-float"),
    pytest.param("latestVersion", True, id="version-a-boolean"),
    pytest.param("latestVersion", 1.5, id="version-not-whole"),
    pytest.param("latestDocketVersion", -1, id="negative-docket-version"),
    pytest.param("latestDocketVersion", TOO_BIG, id="docket-version-over-2^63-1"),
    pytest.param("latestDocketVersion", MAX_VERSION + 1, id="docket-version-over-2^53"),
    pytest.param("advertise", "maybe", id="advertise-not-a-boolean"),
    pytest.param("advertise", "true", id="advertise-a-string"),
    pytest.param("isFullReplica", "maybe", id="full-replica-not-a-boolean"),
    pytest.param("isFullReplica", "yes", id="full-replica-yes"),
    pytest.param("isFullReplica", 1, id="full-replica-one"),
    pytest.param("isFullReplica", 0, id="full-replica-zero"),
]


def assert_400_naming(response: Any, field: str) -> None:
    assert response.status_code == 400
    assert field in response.json()["errors"]
    assert response.json()["detail"].startswith(f"{field}:")


@pytest.mark.parametrize(("field", "value"), INVALID_FIELDS)
def test_creating_with_an_invalid_field_is_400_naming_it_and_creates_nothing(
    api_client: APIClient, field: str, value: Any
) -> None:
    # given
    body = register_body(**{field: value})

    # when
    response = api_client.post("/api/registers/", body, format="json")

    # then
    assert_400_naming(response, field)
    assert not Register.objects.exists()


@pytest.mark.parametrize(("field", "value"), INVALID_FIELDS)
def test_patching_with_an_invalid_field_is_400_naming_it_and_changes_nothing(
    api_client: APIClient, field: str, value: Any
) -> None:
    # given
    register = make_register(name="kept", description="kept", latest_version=4)
    before = Register.objects.values().get(id=register.id)

    # when
    response = api_client.patch(f"/api/registers/{register.id}/", {field: value}, format="json")

    # then
    assert_400_naming(response, field)
    assert Register.objects.values().get(id=register.id) == before


def test_creating_without_a_name_is_400_naming_name(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/registers/", {"advertise": True}, format="json")

    # then
    assert_400_naming(response, "name")
    assert not Register.objects.exists()


def test_a_body_that_is_not_json_is_400_and_creates_nothing(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/registers/", "{not json", content_type="application/json")

    # then
    assert response.status_code == 400
    assert response.json()["detail"]
    assert not Register.objects.exists()


def test_the_largest_allowed_values_are_accepted(api_client: APIClient) -> None:
    # given
    body = register_body(
        name="n" * 38, description="d" * 2048, latestVersion=MAX_VERSION, latestDocketVersion=MAX_VERSION
    )

    # when
    response = api_client.post("/api/registers/", body, format="json")

    # then
    assert response.status_code == 201
    register = Register.objects.get(id=response.json()["id"])
    assert register.latest_version == MAX_VERSION
    assert len(register.name) == 38
    assert len(register.description) == 2048
