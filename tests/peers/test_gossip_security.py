"""The exchange endpoint trusts signatures only: tampered, mis-keyed, replayed or oversized messages change nothing."""

from __future__ import annotations

import uuid
from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from peers.gossip import messages
from peers.identity import peer_id_for, signature_valid
from peers.models import Peer
from peers.store import AdvertisementStore
from tests.peers.fake_peers import EXCHANGE, FakeNode, remote_ad

pytestmark = pytest.mark.django_db


def send(body: bytes, signature: str) -> Any:
    return APIClient().post(EXCHANGE, data=body, content_type="application/json", HTTP_X_SORCHA_SIGNATURE=signature)


def test_a_signed_message_is_accepted_without_a_token_and_answered_with_our_signed_set(
    peer_store: AdvertisementStore,
) -> None:
    node = FakeNode()
    advertisement = remote_ad()
    body = orjson.dumps(node.message([advertisement]))

    response = send(body, node.sign(body))

    assert response.status_code == 200
    reply = orjson.loads(response.content)
    assert signature_valid(reply["publicKey"], response.content, response[messages.SIGNATURE_HEADER])
    assert peer_id_for(reply["publicKey"]) == reply["peerId"]
    assert [row["registerId"] for row in peer_store.available()] == [advertisement["registerId"]]
    assert Peer.objects.get(peer_id=node.peer_id).last_sequence == node.sequence


def test_a_newer_message_replaces_the_peers_set(peer_store: AdvertisementStore) -> None:
    node = FakeNode()
    first, second = remote_ad("first"), remote_ad("second")
    body = orjson.dumps(node.message([first]))
    send(body, node.sign(body))

    body = orjson.dumps(node.message([second]))
    assert send(body, node.sign(body)).status_code == 200

    assert [row["registerId"] for row in peer_store.available()] == [second["registerId"]]


def test_a_tampered_body_is_refused_and_changes_nothing(peer_store: AdvertisementStore) -> None:
    node = FakeNode()
    body = orjson.dumps(node.message([remote_ad("honest")]))
    signature = node.sign(body)
    tampered = body.replace(b"honest", b"forged")

    response = send(tampered, signature)

    assert response.status_code == 403
    assert peer_store.available() == []
    assert not Peer.objects.exists()


def test_a_message_signed_by_a_key_that_does_not_match_the_claimed_id_is_refused(
    peer_store: AdvertisementStore,
) -> None:
    victim, impostor = FakeNode(), FakeNode()
    # The impostor claims the victim's id but can only sign with its own key.
    body = orjson.dumps(impostor.message([remote_ad()], peerId=victim.peer_id))
    response = send(body, impostor.sign(body))

    assert response.status_code == 403
    assert response.json()["detail"].startswith("peerId:")

    # Nor can it present the victim's public key: it cannot sign for it.
    body = orjson.dumps(impostor.message([remote_ad()], peerId=victim.peer_id, publicKey=victim.public_key))
    assert send(body, impostor.sign(body)).status_code == 403
    assert peer_store.available() == []


def test_a_replayed_sequence_is_refused_and_changes_nothing(peer_store: AdvertisementStore) -> None:
    node = FakeNode()
    old = remote_ad("old")
    old_body = orjson.dumps(node.message([old]))
    send(old_body, node.sign(old_body))
    current = remote_ad("current")
    body = orjson.dumps(node.message([current]))
    send(body, node.sign(body))

    response = send(old_body, node.sign(old_body))  # a captured earlier message, validly signed

    assert response.status_code == 409
    assert response.json()["detail"].startswith("sequence:")
    assert [row["registerId"] for row in peer_store.available()] == [current["registerId"]]


def test_an_oversized_body_is_refused(peer_store: AdvertisementStore, settings: Any) -> None:
    settings.GOSSIP_MAX_BODY_BYTES = 2_000
    node = FakeNode()
    body = orjson.dumps(node.message([remote_ad() for _ in range(30)]))

    response = send(body, node.sign(body))

    assert response.status_code == 413
    assert peer_store.available() == []


def test_an_unsigned_message_is_refused(peer_store: AdvertisementStore) -> None:
    node = FakeNode()
    body = orjson.dumps(node.message([remote_ad()]))

    assert send(body, "").status_code == 403
    assert peer_store.available() == []


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"advertisements": [{"registerId": "nope", "name": "x"}]}, "advertisements[0].registerId"),
        (
            {"advertisements": [{"registerId": uuid.uuid4().hex, "name": "x", "latestVersion": -1}]},
            "advertisements[0].latestVersion",
        ),
        ({"sequence": 0}, "sequence"),
        ({"url": "ftp://elsewhere"}, "url"),
    ],
)
def test_a_malformed_message_is_refused_naming_the_field(
    peer_store: AdvertisementStore, change: dict[str, Any], field: str
) -> None:
    node = FakeNode()
    body = orjson.dumps({**node.message([]), **change})

    response = send(body, node.sign(body))

    assert response.status_code == 400
    assert response.json()["detail"].startswith(field)
    assert peer_store.available() == []


def test_a_banned_peers_ads_are_hidden_at_once_and_its_exchanges_refused(
    peer_store: AdvertisementStore, api: APIClient
) -> None:
    node = FakeNode()
    body = orjson.dumps(node.message([remote_ad()]))
    send(body, node.sign(body))
    peer = Peer.objects.get(peer_id=node.peer_id)

    banned = api.post(f"/api/peers/{peer.pk}/ban")

    assert banned.status_code == 200 and banned.json()["status"] == "banned"
    assert peer_store.available() == []
    body = orjson.dumps(node.message([remote_ad()]))
    assert send(body, node.sign(body)).status_code == 403
    assert peer_store.available() == []

    assert api.post(f"/api/peers/{peer.pk}/unban").json()["banned"] is False
    body = orjson.dumps(node.message([remote_ad()]))
    assert send(body, node.sign(body)).status_code == 200
    assert len(peer_store.available()) == 1


def test_the_peer_list_needs_credentials(peer_store: AdvertisementStore, api: APIClient) -> None:
    assert APIClient().get("/api/peers/").status_code == 401
    assert api.get("/api/peers/").status_code == 200
