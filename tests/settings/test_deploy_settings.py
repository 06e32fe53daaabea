"""Deployment settings from the environment: `check --deploy` passes with them, health stays plain HTTP."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client

from tests.settings.helpers import manage

DEPLOYED = {
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "CSRF_TRUSTED_ORIGINS": "https://node.example.org,https://peer.example.org:8443",
}


def test_check_deploy_passes_at_warning_level_with_the_deployment_variables_set() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING", **DEPLOYED)

    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_without_them_check_deploy_warns_about_each_one() -> None:
    result = manage("check", "--deploy", "--fail-level", "WARNING")

    assert result.returncode != 0
    for warning in ("security.W004", "security.W008", "security.W012", "security.W016"):
        assert warning in result.stderr, result.stderr


def test_the_variables_reach_the_settings() -> None:
    code = (
        "from django.conf import settings as s; "
        "print(s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
        "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_PROXY_SSL_HEADER, s.CSRF_TRUSTED_ORIGINS)"
    )
    result = manage("shell", "--verbosity", "0", "-c", code, **DEPLOYED)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "True 31536000 True True True True ('HTTP_X_FORWARDED_PROTO', 'https') "
        "['https://node.example.org', 'https://peer.example.org:8443']"
    )


@pytest.fixture
def behind_https(settings: Any) -> Client:
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    return Client()  # a new client builds its middleware from these settings


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/healthz/", "/readyz/"])
@pytest.mark.parametrize("method", ["get", "head"])
def test_health_endpoints_answer_plain_http_with_the_ssl_redirect_on(
    behind_https: Client, path: str, method: str
) -> None:
    response = getattr(behind_https, method)(path)

    assert response.status_code == 200


@pytest.mark.django_db
def test_everything_else_is_redirected_to_https(behind_https: Client) -> None:
    response = behind_https.get("/admin/")

    assert response.status_code == 301
    assert response["Location"] == "https://testserver/admin/"
    assert behind_https.get("/admin/", headers={"X-Forwarded-Proto": "https"}).status_code == 302  # to the login
