from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from registers.models import Register
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db


def test_retrieving_a_register_answers_its_camel_case_body(api_client: APIClient) -> None:
    # given
    register = make_register(name="ledger", advertise=True, latest_version=12)

    # when
    response = api_client.get(f"/api/registers/{register.id}/")

    # then
    assert response.status_code == 200
    assert response.json()["id"] == register.id
    assert response.json()["name"] == "ledger"
    assert response.json()["advertise"] is True
    assert response.json()["latestVersion"] == 12


def test_retrieving_an_unknown_register_is_404(api_client: APIClient) -> None:
    # when
    response = api_client.get(f"/api/registers/{'0' * 32}/")

    # then
    assert response.status_code == 404


def test_put_replaces_the_writable_fields(api_client: APIClient) -> None:
    # given
    register = make_register(name="before", advertise=False)
    body = {
        "name": "after",
        "description": "replaced",
        "advertise": True,
        "isFullReplica": False,
        "latestVersion": 5,
        "latestDocketVersion": 2,
    }

    # when
    response = api_client.put(f"/api/registers/{register.id}/", body, format="json")

    # then
    assert response.status_code == 200
    register.refresh_from_db()
    assert (register.name, register.description, register.advertise, register.is_full_replica) == (
        "after",
        "replaced",
        True,
        False,
    )
    assert (register.latest_version, register.latest_docket_version) == (5, 2)


def test_put_without_a_name_is_400_naming_name(api_client: APIClient) -> None:
    # given
    register = make_register(name="kept")

    # when
    response = api_client.put(f"/api/registers/{register.id}/", {"advertise": True}, format="json")

    # then
    assert response.status_code == 400
    assert "name" in response.json()["errors"]
    register.refresh_from_db()
    assert (register.name, register.advertise) == ("kept", False)


def test_patch_changes_only_the_given_fields(api_client: APIClient) -> None:
    # given
    register = make_register(name="unchanged", description="same", advertise=False)

    # when
    response = api_client.patch(f"/api/registers/{register.id}/", {"advertise": True}, format="json")

    # then
    assert response.status_code == 200
    register.refresh_from_db()
    assert (register.name, register.description, register.advertise) == ("unchanged", "same", True)


def test_patch_moves_updated_at_forward(api_client: APIClient) -> None:
    # given
    register = make_register()
    before = register.updated_at

    # when
    api_client.patch(f"/api/registers/{register.id}/", {"latestVersion": 1}, format="json")

    # then
    register.refresh_from_db()
    assert register.updated_at > before


def test_patch_cannot_change_the_id(api_client: APIClient) -> None:
    # given
    register = make_register()

    # when
    response = api_client.patch(f"/api/registers/{register.id}/", {"id": "b" * 32}, format="json")

    # then: refused naming `id` (it is read-only), and the register keeps its id
    assert response.status_code == 400
    assert response.json()["detail"].startswith("id: read-only field")
    assert Register.objects.filter(id=register.id).exists()
    assert not Register.objects.filter(id="b" * 32).exists()


def test_deleting_a_register_answers_204_and_removes_it(api_client: APIClient) -> None:
    # given
    register = make_register()

    # when
    response = api_client.delete(f"/api/registers/{register.id}/")

    # then
    assert response.status_code == 204
    assert not Register.objects.filter(id=register.id).exists()


def test_deleting_an_unknown_register_is_404(api_client: APIClient) -> None:
    # when
    response = api_client.delete(f"/api/registers/{'0' * 32}/")

    # then
    assert response.status_code == 404
