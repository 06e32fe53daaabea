"""The node's own paths: `/` for operators, health for load balancers (GET and HEAD), one slash rule."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from rest_framework.test import APIClient

from peers.store import AdvertisementStore

pytestmark = pytest.mark.django_db


def test_the_root_takes_an_anonymous_operator_through_the_login_to_the_peer_network_page() -> None:
    response = Client().get("/", follow=True)

    (first, _), (second, _) = response.redirect_chain
    assert first == "/admin/peers/peernetwork/"
    assert second == "/admin/login/?next=/admin/peers/peernetwork/"
    assert response.status_code == 200
    assert b'name="password"' in response.content


def test_the_root_takes_a_logged_in_operator_to_the_peer_network_page(peer_store: AdvertisementStore) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("operator"))

    response = client.get("/", follow=True)

    assert response.redirect_chain == [("/admin/peers/peernetwork/", 302)]
    assert response.status_code == 200
    assert b"Peer network" in response.content


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_answer_head_like_get_without_a_body(path: str, peer_store: AdvertisementStore) -> None:
    get, head = Client().get(path), Client().head(path)

    assert head.status_code == get.status_code == 200
    assert head["Content-Type"] == get["Content-Type"] == "application/json"
    assert head.content == b""


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_health_endpoints_refuse_writes(path: str) -> None:
    assert Client().post(path).status_code == 405


# The slash rule: every machine endpoint answers with and without a trailing slash, directly.
MACHINE_PATHS = [
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/registers",
    "/api/registers/available",
    "/api/store/status",
    "/api/peers",
    "/api/registers/sync-state",
]


@pytest.mark.parametrize("path", MACHINE_PATHS)
def test_machine_endpoints_answer_with_and_without_a_trailing_slash(
    path: str, api: APIClient, peer_store: AdvertisementStore
) -> None:
    bare, slashed = api.get(path), api.get(f"{path}/")

    assert bare.status_code == slashed.status_code == 200, (bare.status_code, slashed.status_code)
    assert bare["Content-Type"] == slashed["Content-Type"]


@pytest.mark.parametrize("path", ["/admin", "/admin/peers/peernetwork", "/admin/registers/register"])
def test_pages_for_people_redirect_to_their_slashed_address(path: str) -> None:
    client = Client()
    client.force_login(User.objects.create_superuser("operator"))

    response = client.get(path)

    assert response.status_code == 301
    assert response["Location"] == f"{path}/"
