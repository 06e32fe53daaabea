"""Requests to the Peer API as its tests make them: the paths, a valid bulk item, JSON posts, what is available."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from rest_framework.test import APIClient

from peers.store import AdvertisementStore

BULK = "/api/registers/bulk-advertise"
AVAILABLE = "/api/registers/available"


def advertise_url(rid: str) -> str:
    return f"/api/registers/{rid}/advertise"


def item(rid: str, **fields: Any) -> dict[str, Any]:
    return {
        "registerId": rid,
        "isPublic": True,
        "name": "ledger",
        "description": "a register",
        "latestVersion": 1,
        "latestDocketVersion": 1,
        "isFullReplica": True,
        "sourceUpdatedAt": "2026-11-24T10:00:00.000001Z",
        **fields,
    }


def post_json(api: APIClient, url: str, body: Any) -> Any:
    return api.post(url, data=orjson.dumps(body), content_type="application/json")


def available_ids(api: APIClient) -> set[str]:
    response = api.get(AVAILABLE)
    assert response.status_code == 200
    return {row["registerId"] for row in response.json()}


def moment(**offset: float) -> str:
    """This machine's clock moved by `offset` (timedelta keywords), as a client would send it."""
    return (datetime.now(UTC) + timedelta(**offset)).isoformat()


def store_state(store: AdvertisementStore) -> tuple[Any, Any]:
    return store.available(), store.status()["lastFullSync"]
