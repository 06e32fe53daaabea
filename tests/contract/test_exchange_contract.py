"""`POST /api/peers/exchange` answers as documented: real signed messages, checked against the schema.

The fuzzer cannot sign, so it only sends invalid messages there; these tests send valid and
invalid ones a real node would, and validate every answer against the served schema.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import orjson
import pytest
import requests
import schemathesis
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peers.gossip import messages
from peers.identity import peer_id_for, signature_valid
from peers.store import AdvertisementStore
from tests.contract.served import RESPONSE_CHECKS, served_schema

pytestmark = pytest.mark.django_db(transaction=True)

EXCHANGE = "/api/peers/exchange/"
operation = schemathesis.openapi.from_dict(served_schema())[EXCHANGE]["POST"]


class Node:
    """Another node: its own Ed25519 key, signing its messages as a real node does."""

    def __init__(self) -> None:
        self.key = Ed25519PrivateKey.generate()
        raw = serialization.Encoding.Raw
        self.public_key = self.key.public_key().public_bytes(raw, serialization.PublicFormat.Raw).hex()
        self.sequence = 0

    def message(self, **overrides: Any) -> dict[str, Any]:
        self.sequence += 1
        return {
            "peerId": peer_id_for(self.public_key),
            "publicKey": self.public_key,
            "url": "http://127.0.0.1:9",
            "name": "remote",
            "sequence": self.sequence,
            "sentAt": datetime.now(tz=UTC).isoformat(),
            "advertisements": [{"registerId": uuid.uuid4().hex, "name": "ledger", "latestVersion": 2}],
            "peers": [],
            **overrides,
        }

    def sign(self, body: bytes) -> str:
        return self.key.sign(body).hex()


def exchange(live_server: Any, message: dict[str, Any], signature: str, body: bytes | None = None) -> Any:
    """Send the message and check the answer against the schema; the answer is returned."""
    body = orjson.dumps(message) if body is None else body
    headers = {"Content-Type": "application/json", messages.SIGNATURE_HEADER: signature}
    response = requests.post(f"{live_server.url}{EXCHANGE}", data=body, headers=headers, timeout=10)
    case = operation.Case(body=message, headers={messages.SIGNATURE_HEADER: signature}, media_type="application/json")
    case.validate_response(response, checks=RESPONSE_CHECKS)
    return response


def test_a_signed_message_gets_this_nodes_signed_message_as_documented(
    live_server: Any, peer_store: AdvertisementStore
) -> None:
    node = Node()
    body = orjson.dumps(node.message())

    response = exchange(live_server, orjson.loads(body), node.sign(body), body)

    assert response.status_code == 200
    reply = response.json()
    assert signature_valid(reply["publicKey"], response.content, response.headers[messages.SIGNATURE_HEADER])


def test_a_replayed_message_gets_the_documented_409(live_server: Any, peer_store: AdvertisementStore) -> None:
    node = Node()
    body = orjson.dumps(node.message())
    exchange(live_server, orjson.loads(body), node.sign(body), body)

    response = exchange(live_server, orjson.loads(body), node.sign(body), body)

    assert response.status_code == 409


def test_a_bad_signature_gets_the_documented_403(live_server: Any, peer_store: AdvertisementStore) -> None:
    node = Node()
    message = node.message()

    response = exchange(live_server, message, Node().sign(orjson.dumps(message)))

    assert response.status_code == 403


def test_a_malformed_message_gets_the_documented_400(live_server: Any, peer_store: AdvertisementStore) -> None:
    node = Node()
    message = node.message(sequence=0)

    response = exchange(live_server, message, node.sign(orjson.dumps(message)))

    assert response.status_code == 400
    assert response.json()["detail"].startswith("sequence")


def test_a_message_over_the_gossip_limit_gets_the_documented_413(
    live_server: Any, peer_store: AdvertisementStore, settings: Any
) -> None:
    settings.GOSSIP_MAX_BODY_BYTES = 200
    node = Node()
    message = node.message()

    response = exchange(live_server, message, node.sign(orjson.dumps(message)))

    assert response.status_code == 413
