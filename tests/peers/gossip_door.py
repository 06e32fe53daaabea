"""Messages to this node's gossip door, in-process (the exchange view through Django's test client):
shared by the admission and digest tests."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from tests.peers.fake_peers import EXCHANGE, FakeNode

ORIGINAL_KEYS = {"peerId", "publicKey", "url", "name", "sequence", "sentAt", "advertisements", "peers"}


@pytest.fixture(autouse=True)
def generous_rates(settings: Any) -> None:
    # Every test client request comes from one address; rate tests lower these themselves.
    settings.GOSSIP_RATE_PER_ADDRESS = 1_000_000
    settings.GOSSIP_RATE_PER_PEER = 1_000_000


def send(node: FakeNode, advertisements: list[dict[str, Any]], address: str = "127.0.0.1", **overrides: Any) -> Any:
    body, signature = node.signed(advertisements, **overrides)
    return post(body, signature, address)


def post(body: bytes, signature: str, address: str = "127.0.0.1") -> Any:
    return APIClient().post(
        EXCHANGE, data=body, content_type="application/json", HTTP_X_SORCHA_SIGNATURE=signature, REMOTE_ADDR=address
    )


def metric_samples(api: APIClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = api.get("/metrics").content.decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def canonical_digest(advertisements: list[dict[str, Any]]) -> str:
    """The documented digest, written out independently of the code under test (json, not orjson)."""
    rows = sorted(
        [
            ad["registerId"],
            ad["name"],
            ad.get("description", ""),
            ad.get("latestVersion", 0),
            ad.get("latestDocketVersion", 0),
            ad.get("isFullReplica", True),
        ]
        for ad in advertisements
    )
    return hashlib.sha256(json.dumps(rows, separators=(",", ":"), ensure_ascii=False).encode()).hexdigest()
