"""The OpenAPI document as `/api/schema/` serves it, for the contract tests."""

from __future__ import annotations

from typing import Any

from django.test import Client
from schemathesis.checks import CHECKS, load_all_checks

from tests.constants import SERVICE_TOKEN

AUTHORIZATION = f"Bearer {SERVICE_TOKEN}"

# The checks about one response (the others send requests of their own), for answers a test obtained itself.
load_all_checks()
RESPONSE_CHECKS = [
    CHECKS.get_one(name)
    for name in (
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
    )
]


def served_schema() -> dict[str, Any]:
    response = Client().get("/api/schema/", HTTP_AUTHORIZATION=AUTHORIZATION, HTTP_ACCEPT="application/json")
    assert response.status_code == 200, response.content[:300]
    return dict(response.json())
