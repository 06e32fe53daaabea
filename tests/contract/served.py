"""The OpenAPI document as `/api/schema/` serves it, for the contract tests."""

from __future__ import annotations

from typing import Any

from django.test import Client

from tests.constants import SERVICE_TOKEN

AUTHORIZATION = f"Bearer {SERVICE_TOKEN}"


def served_schema() -> dict[str, Any]:
    response = Client().get("/api/schema/", HTTP_AUTHORIZATION=AUTHORIZATION, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content[:300]
    return dict(response.json())
