from __future__ import annotations

import re

import pytest
from rest_framework.test import APIClient

from registers.models import Register
from tests.registers.factories import register_body

pytestmark = pytest.mark.django_db

CAMEL_CASE_FIELDS = {
    "id",
    "name",
    "description",
    "advertise",
    "isFullReplica",
    "latestVersion",
    "latestDocketVersion",
    "createdAt",
    "updatedAt",
}


def test_creating_a_register_answers_201_with_the_camel_case_body(api_client: APIClient) -> None:
    # given
    body = register_body(name="ledger-a")

    # when
    response = api_client.post("/api/registers/", body, format="json")

    # then
    assert response.status_code == 201
    assert set(response.json()) == CAMEL_CASE_FIELDS
    assert response.json()["name"] == "ledger-a"
    assert response.json()["advertise"] is True
    assert response.json()["isFullReplica"] is False
    assert response.json()["latestVersion"] == 7
    assert response.json()["latestDocketVersion"] == 3


def test_a_created_register_is_stored_with_the_given_fields(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/registers/", register_body(name="ledger-b"), format="json")

    # then
    register = Register.objects.get(id=response.json()["id"])
    assert register.name == "ledger-b"
    assert register.advertise is True
    assert register.is_full_replica is False
    assert (register.latest_version, register.latest_docket_version) == (7, 3)


def test_a_created_register_gets_an_id_of_32_lowercase_hex_characters(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/registers/", register_body(), format="json")

    # then
    assert re.fullmatch(r"[0-9a-f]{32}", response.json()["id"])


def test_a_register_created_with_only_a_name_gets_the_defaults(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/registers/", {"name": "minimal"}, format="json")

    # then
    assert response.status_code == 201
    body = response.json()
    assert body["description"] == ""
    assert body["advertise"] is False
    assert body["isFullReplica"] is True
    assert body["latestVersion"] == 0
    assert body["latestDocketVersion"] == 0
    assert body["createdAt"]
    assert body["updatedAt"]


def test_read_only_fields_sent_on_create_are_refused_naming_them(api_client: APIClient) -> None:
    # given: the server sets these; a client that sends them is told so instead of having them dropped
    chosen_id = "a" * 32
    body = register_body(id=chosen_id, createdAt="2000-01-01T00:00:00Z", updatedAt="2000-01-01T00:00:00Z")

    # when
    response = api_client.post("/api/registers/", body, format="json")

    # then
    assert response.status_code == 400
    assert set(response.json()["errors"]) == {"id", "createdAt", "updatedAt"}
    assert response.json()["detail"].startswith("id: read-only field")
    assert not Register.objects.exists()


def test_two_created_registers_get_different_ids(api_client: APIClient) -> None:
    # when
    first = api_client.post("/api/registers/", register_body(), format="json")
    second = api_client.post("/api/registers/", register_body(), format="json")

    # then
    assert first.json()["id"] != second.json()["id"]
