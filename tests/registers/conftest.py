from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from tests.plugin import SERVICE_TOKEN


@pytest.fixture
def api_client() -> APIClient:
    """A client holding the service bearer token."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {SERVICE_TOKEN}")
    return client


@pytest.fixture
def anonymous_client() -> APIClient:
    return APIClient()
