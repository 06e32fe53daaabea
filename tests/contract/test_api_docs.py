"""`/api/schema/` and `/api/docs/` need the API's credentials (unless API_DOCS_PUBLIC); the UI is self-hosted."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.test import Client

from tests.constants import SERVICE_TOKEN

pytestmark = pytest.mark.django_db

BEARER = {"HTTP_AUTHORIZATION": f"Bearer {SERVICE_TOKEN}"}


def test_the_schema_needs_credentials() -> None:
    assert Client().get("/api/schema/").status_code == 401
    assert Client().get("/api/schema/", HTTP_AUTHORIZATION="Bearer wrong-token-0123456789").status_code == 401


def test_the_schema_answers_the_service_token_and_a_logged_in_user() -> None:
    user_client = Client()
    user_client.force_login(User.objects.create_user("reader", password="a-long-password-123"))

    assert Client().get("/api/schema/", **BEARER).status_code == 200
    assert user_client.get("/api/schema/").status_code == 200


def test_the_docs_page_sends_an_anonymous_visitor_to_the_login() -> None:
    response = Client().get("/api/docs/")

    assert response.status_code == 302
    assert response["Location"].startswith("/admin/login/?next=/api/docs/")


def test_the_docs_page_refuses_a_wrong_token() -> None:
    assert Client().get("/api/docs/", HTTP_AUTHORIZATION="Bearer wrong-token-0123456789").status_code == 401


def test_the_docs_page_is_served_from_this_node_only(settings: Any) -> None:
    settings.DEBUG = False
    client = Client()
    client.force_login(User.objects.create_user("operator", password="a-long-password-123"))

    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert not re.search(r"(?:https?:)?//[^\s\"'<>]+", html), "the docs page references another host"
    assets = re.findall(r"(?:src|href)=\"(/static/[^\"]+)\"", html)
    assert {asset.rsplit("/", 1)[1] for asset in assets} >= {"swagger-ui.css", "swagger-ui-bundle.js"}
    for asset in assets:  # whitenoise serves them with DEBUG off
        served = client.get(asset)
        assert served.status_code == 200, asset
        assert b"".join(served.streaming_content if served.streaming else [served.content])


def test_with_api_docs_public_anonymous_callers_get_the_schema_and_docs(settings: Any) -> None:
    settings.API_DOCS_PUBLIC = True

    assert Client().get("/api/schema/").status_code == 200
    assert Client().get("/api/docs/").status_code == 200


def test_api_docs_public_is_read_from_the_environment_and_off_by_default() -> None:
    def setting(**overrides: str) -> str:
        environment = {key: value for key, value in os.environ.items() if key != "API_DOCS_PUBLIC"}
        code = "import django; django.setup(); from django.conf import settings; print(settings.API_DOCS_PUBLIC)"
        result = subprocess.run(
            [sys.executable, "-c", code], env={**environment, **overrides}, capture_output=True, text=True, check=True
        )
        return result.stdout.strip()

    assert setting() == "False"
    assert setting(API_DOCS_PUBLIC="true") == "True"
