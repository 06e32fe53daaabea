from __future__ import annotations

import pytest
from django.urls import Resolver404, resolve
from rest_framework.test import APIClient

from registers.api.views import RegisterViewSet
from tests.registers.factories import make_register

REGISTERS_ONLY = "tests.registers.urls_registers_only"
PEER_SERVICE_PATHS = [
    "/api/registers/available",
    "/api/registers/available/",
    "/api/registers/bulk-advertise",
    "/api/registers/sync-state",
    f"/api/registers/{'a' * 32}/advertise",
    "/api/registers/ABCDEF0123456789ABCDEF0123456789",
]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/api/registers", "/api/registers/"])
def test_the_list_route_answers_with_and_without_a_trailing_slash(api_client: APIClient, path: str) -> None:
    # given
    make_register()

    # when
    response = api_client.get(path)

    # then
    assert response.status_code == 200
    assert response.json()["count"] == 1


@pytest.mark.django_db
@pytest.mark.parametrize("slash", ["", "/"])
def test_the_detail_route_answers_with_and_without_a_trailing_slash(api_client: APIClient, slash: str) -> None:
    # given
    register = make_register()

    # when
    response = api_client.get(f"/api/registers/{register.id}{slash}")

    # then
    assert response.status_code == 200
    assert response.json()["id"] == register.id


@pytest.mark.django_db
def test_creating_without_a_trailing_slash_works(api_client: APIClient) -> None:
    # when
    response = api_client.post("/api/registers", {"name": "no-slash"}, format="json")

    # then
    assert response.status_code == 201


@pytest.mark.parametrize("path", PEER_SERVICE_PATHS)
def test_the_register_routes_do_not_match_peer_service_paths(path: str) -> None:
    # when / then
    with pytest.raises(Resolver404):
        resolve(path, urlconf=REGISTERS_ONLY)


@pytest.mark.parametrize("path", PEER_SERVICE_PATHS)
def test_the_project_does_not_send_peer_service_paths_to_the_register_viewset(path: str) -> None:
    # when
    try:
        match = resolve(path)
    except Resolver404:
        return

    # then
    assert getattr(match.func, "cls", None) is not RegisterViewSet


def test_a_register_id_resolves_to_the_register_viewset() -> None:
    # when
    match = resolve(f"/api/registers/{'0123456789abcdef' * 2}", urlconf=REGISTERS_ONLY)

    # then
    assert match.func.cls is RegisterViewSet  # type: ignore[attr-defined]
    assert match.kwargs == {"pk": "0123456789abcdef" * 2}


def test_the_register_router_serves_no_api_root() -> None:
    # when / then
    with pytest.raises(Resolver404):
        resolve("/api/", urlconf=REGISTERS_ONLY)
