"""A path whose id is malformed answers 400 naming the id parameter (not "no API operation"), and changes
nothing; a well-formed id that names nothing stays 404."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from peers.models import Peer
from peers.store import AdvertisementStore
from registers.models import Register
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db

NOT_A_REGISTER_ID = "is not a register id (32 lowercase hex characters)"
NOT_A_PEER_ID = "is not a peer id (an integer from 1 to 9223372036854775807)"


@pytest.mark.parametrize("path", ["/api/registers/NOTANID/", "/api/registers/NOTANID"])
def test_reading_a_register_by_a_malformed_id_is_400_saying_so(api: APIClient, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 400
    assert response["Content-Type"] == "application/json"
    assert response.json() == {"detail": f"id: 'NOTANID' {NOT_A_REGISTER_ID}"}


@pytest.mark.parametrize("method", ["put", "patch", "delete"])
def test_changing_a_register_by_a_malformed_id_is_400_and_changes_nothing(api: APIClient, method: str) -> None:
    # given
    make_register(name="kept")
    before = list(Register.objects.values())

    # when
    response = getattr(api, method)(f"/api/registers/{'A' * 32}/", {"name": "renamed"}, format="json")

    # then
    assert response.status_code == 400
    assert response.json()["detail"] == f"id: '{'A' * 32}' {NOT_A_REGISTER_ID}"
    assert list(Register.objects.values()) == before


@pytest.mark.parametrize("suffix", ["%0A", "%0A/", "%00", "%20"])
def test_a_register_id_with_a_trailing_character_is_malformed(api: APIClient, suffix: str) -> None:
    # given
    register = make_register(name="kept")

    # when
    read = api.get(f"/api/registers/{register.id}{suffix}")
    changed = api.patch(f"/api/registers/{register.id}{suffix}", {"name": "renamed"}, format="json")
    deleted = api.delete(f"/api/registers/{register.id}{suffix}")

    # then
    assert (read.status_code, changed.status_code, deleted.status_code) == (400, 400, 400)
    assert read.json()["detail"].startswith("id: ")
    register.refresh_from_db()
    assert register.name == "kept"


def test_a_malformed_id_is_said_so_without_credentials_too() -> None:
    response = APIClient().get("/api/registers/NOTANID/")

    assert response.status_code == 400
    assert response.json()["detail"].startswith("id: 'NOTANID'")


@pytest.mark.parametrize("method", ["post", "delete"])
def test_an_advertisement_path_with_a_malformed_register_id_is_400_naming_register_id(
    api: APIClient, peer_store: AdvertisementStore, method: str
) -> None:
    response = getattr(api, method)("/api/registers/NOTANID/advertise", {"isPublic": True}, format="json")

    assert response.status_code == 400
    assert response.json()["detail"] == f"registerId: 'NOTANID' {NOT_A_REGISTER_ID}"
    assert peer_store.available() == []


@pytest.mark.parametrize("peer_id", ["abc", "-1", "1.5", "99999999999999999999", "9223372036854775808"])
@pytest.mark.parametrize("action", ["ban", "unban", "approve", "forget"])
def test_a_peer_action_with_a_malformed_peer_id_is_400_naming_id(
    api: APIClient, peer_store: AdvertisementStore, peer_id: str, action: str
) -> None:
    # given
    Peer.objects.create(name="p", claimed_url="http://127.0.0.1:9")
    before = list(Peer.objects.values())

    # when
    response = api.post(f"/api/peers/{peer_id}/{action}")

    # then
    assert response.status_code == 400, response.content
    assert response.json()["detail"] == f"id: '{peer_id}' {NOT_A_PEER_ID}"
    assert list(Peer.objects.values()) == before


def test_a_well_formed_peer_id_that_names_no_peer_is_404(api: APIClient, peer_store: AdvertisementStore) -> None:
    response = api.post("/api/peers/9223372036854775807/ban")

    assert response.status_code == 404


def test_a_well_formed_register_id_that_names_no_register_is_404(api: APIClient) -> None:
    response = api.get(f"/api/registers/{'0' * 32}/")

    assert response.status_code == 404


@pytest.mark.parametrize(
    "path", ["/api/nothing-here", "/api/registers/" + "0" * 32 + "/x", "/api/peers/abc", "/api/registers/a/b/c"]
)
def test_a_path_that_no_operation_has_stays_404(api: APIClient, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 404
    assert response.json()["detail"].startswith("Not found: no API operation at")
