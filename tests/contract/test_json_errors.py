"""Under /api/ an unmatched path or a wrong method answers JSON `{"detail": ...}`; elsewhere Django's pages stay."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "path",
    # A malformed id in a path that names an operation is 400 instead (tests/contract/test_malformed_ids.py).
    ["/api/nothing-here", "/api/registers/" + "0" * 32 + "/x", "/api/peers/abc"],
)
def test_an_unmatched_api_path_answers_a_json_404(api: APIClient, path: str) -> None:
    response = api.get(path)

    assert response.status_code == 404
    assert response["Content-Type"] == "application/json"
    assert response.json()["detail"].startswith("Not found")


def test_an_unmatched_api_path_answers_json_even_without_credentials() -> None:
    response = APIClient().post("/api/nothing-here", data=b"{}", content_type="application/json")

    assert response.status_code == 404
    assert "detail" in response.json()


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("put", "/api/registers/available"),
        ("get", "/api/registers/bulk-advertise"),
        ("get", "/api/registers/" + "0" * 32 + "/advertise"),
        ("delete", "/api/peers/round"),
        ("post", "/api/store/status"),
        ("patch", "/api/registers/"),
        ("post", "/api/schema/"),
        ("post", "/api/docs/"),
    ],
)
def test_a_wrong_method_under_api_answers_a_json_405(api: APIClient, method: str, path: str) -> None:
    response = getattr(api, method)(path)

    assert response.status_code == 405
    assert response["Content-Type"] == "application/json"
    assert "detail" in response.json()


def test_an_unmatched_path_outside_the_api_keeps_the_html_404() -> None:
    response = APIClient().get("/no-such-page")

    assert response.status_code == 404
    assert response["Content-Type"].startswith("text/html")


@pytest.mark.parametrize("path", ["/api/schema/", "/api/docs/"])
def test_the_docs_refuse_a_wrong_token_in_json(path: str) -> None:
    response = APIClient().get(path, HTTP_AUTHORIZATION="Bearer wrong-token-0123456789")

    assert response.status_code == 401
    assert response.json()["detail"]
