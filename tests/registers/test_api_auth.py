from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from registers.models import Register
from tests.registers.factories import register_body

pytestmark = pytest.mark.django_db


def test_creating_without_credentials_is_401_and_creates_nothing(anonymous_client: APIClient) -> None:
    # when
    response = anonymous_client.post("/api/registers/", register_body(), format="json")

    # then
    assert response.status_code == 401
    assert not Register.objects.exists()


def test_listing_without_credentials_is_401_and_asks_for_a_bearer_token(anonymous_client: APIClient) -> None:
    # when
    response = anonymous_client.get("/api/registers/")

    # then
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"


def test_a_wrong_bearer_token_is_401_and_creates_nothing(anonymous_client: APIClient) -> None:
    # given
    anonymous_client.credentials(HTTP_AUTHORIZATION="Bearer not-the-service-token-at-all")

    # when
    response = anonymous_client.post("/api/registers/", register_body(), format="json")

    # then
    assert response.status_code == 401
    assert not Register.objects.exists()


def test_a_session_authenticated_user_can_list_registers(anonymous_client: APIClient) -> None:
    # given
    anonymous_client.force_login(User.objects.create_user("operator", password="a-long-password-1"))

    # when
    response = anonymous_client.get("/api/registers/")

    # then
    assert response.status_code == 200


def test_a_session_authenticated_user_can_create_a_register(anonymous_client: APIClient) -> None:
    # given
    anonymous_client.force_login(User.objects.create_user("operator", password="a-long-password-1"))

    # when
    response = anonymous_client.post("/api/registers/", register_body(name="by-operator"), format="json")

    # then
    assert response.status_code == 201
    assert Register.objects.filter(name="by-operator").exists()
