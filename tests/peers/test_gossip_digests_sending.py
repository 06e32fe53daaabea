"""Gossip digests, the sending side: this process's real `exchange_with` talking over real HTTP to a real
node (a gunicorn process), with the bodies that went over the wire recorded as `outbound.post` sent and
read them. An unchanged set travels as its SHA-256; a receiver that lost it asks for it.

This is the original exchange, between nodes that do not relay signed sets (`GOSSIP_RELAY=false` on
both: what a node of the original exchange speaks); relaying nodes are in test_gossip_relay*.py.
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from typing import Any

import orjson
import pytest

from peers.gossip.exchange import exchange_with
from peers.models import Peer
from peers.store import AdvertisementStore
from tests.nodes import Node
from tests.peers.fake_peers import SIGNATURE_HEADER, FakeNode, SocketServer, remote_ad
from tests.peers.gossip_door import (
    ORIGINAL_KEYS,
    canonical_digest,
    generous_rates,  # noqa: F401  (autouse: imported, it applies to this module)
)
from tests.peers.wire import Exchanges, advertise_on, exchange, local_inputs
from tests.plugin import SESSION_REDIS

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def original_exchange(settings: Any) -> None:
    settings.GOSSIP_RELAY = False


@pytest.fixture
def node_b() -> Iterator[Node]:
    node = Node("digest-b", SESSION_REDIS, GOSSIP_RELAY="false")
    node.start_web()
    yield node
    node.stop_all()


def test_an_unchanged_exchange_carries_digests_not_sets_under_1_kb_each_way_with_10k_registers(
    peer_store: AdvertisementStore, node_b: Node, wire: Exchanges
) -> None:
    peer_store.apply_bulk(local_inputs(10_000))
    advertise_on(node_b, 10_000)
    assert exchange(node_b) == "ok"  # first contact: the sets travel
    first_request, first_reply = wire[-1]
    assert first_reply is not None
    assert len(first_request) > 500_000 and len(first_reply) > 500_000

    assert exchange(node_b) == "ok"

    request, reply = wire[-1]
    assert reply is not None
    assert len(request) <= 1024 and len(reply) <= 1024, (len(request), len(reply))
    assert "advertisements" not in orjson.loads(request) and "advertisements" not in orjson.loads(reply)
    assert len(wire) == 2  # no retry was needed
    assert len(peer_store.remote_advertisements()) == 10_000
    assert {row["peerId"] and row["advertisementsHeld"] for row in node_b.peers()} == {10_000}


def test_a_receiver_that_lost_the_set_asks_for_it_and_gets_it_in_the_same_exchange(
    peer_store: AdvertisementStore, node_b: Node, wire: Exchanges
) -> None:
    peer_store.apply_bulk(local_inputs(20))
    assert exchange(node_b) == "ok"
    assert exchange(node_b) == "ok"
    assert "advertisements" not in orjson.loads(wire[-1][0])  # B held our set: the digest went
    (row,) = node_b.peers()
    node_b.api("POST", f"/api/peers/{row['id']}/forget").raise_for_status()  # B loses our set and our row
    sent_before = len(wire)

    assert exchange(node_b) == "ok"

    (digest_only, refused), (full, _) = wire[sent_before:]
    assert "advertisements" not in orjson.loads(digest_only) and refused is None
    assert len(orjson.loads(full)["advertisements"]) == 20
    assert node_b.available_ids(local=False) == {entry.register_id for entry in peer_store.local_advertisements()}


def test_a_changed_set_travels_in_full(peer_store: AdvertisementStore, node_b: Node, wire: Exchanges) -> None:
    peer_store.apply_bulk(local_inputs(5))
    assert exchange(node_b) == "ok"
    assert exchange(node_b) == "ok"
    added = local_inputs(1, prefix="added")

    peer_store.apply_bulk(added)
    assert exchange(node_b) == "ok"

    request = orjson.loads(wire[-1][0])
    assert len(request["advertisements"]) == 6
    assert request["advertisementsDigest"] == canonical_digest(request["advertisements"])
    assert added[0].register_id in node_b.available_ids(local=False)
    assert exchange(node_b) == "ok"
    assert "advertisements" not in orjson.loads(wire[-1][0])  # and is a digest again once held


class OriginalPeer(SocketServer):
    """A node of the original protocol: refuses digest fields as unknown, answers with an original message."""

    def __init__(self) -> None:
        self.node = FakeNode(name="original")
        self.bodies: list[bytes] = []
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            data += conn.recv(65536)
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            body += conn.recv(65536)
        self.bodies.append(body)
        if set(orjson.loads(body)) - ORIGINAL_KEYS:
            answer, status, signature = b'{"detail": "extra fields"}', "400 Bad Request", ""
        else:
            self.node.url = self.url
            answer, signature = self.node.signed([remote_ad("original-ledger")])
            status = "200 OK"
        head = f"HTTP/1.1 {status}\r\nContent-Length: {len(answer)}\r\n{SIGNATURE_HEADER}: {signature}\r\n\r\n"
        conn.sendall(head.encode() + answer)


@pytest.fixture
def original_peer() -> Iterator[OriginalPeer]:
    server = OriginalPeer()
    yield server
    server.stop()


def test_a_peer_without_digests_keeps_getting_the_original_message(
    peer_store: AdvertisementStore, original_peer: OriginalPeer
) -> None:
    peer_store.apply_bulk(local_inputs(3))
    Peer.objects.create(url=original_peer.url)

    outcomes = [exchange_with(Peer.objects.get(url=original_peer.url)) for _ in range(3)]

    assert outcomes == ["ok", "ok", "ok"]
    assert all(set(orjson.loads(body)) == ORIGINAL_KEYS for body in original_peer.bodies)
    assert Peer.objects.get(url=original_peer.url).acknowledged_digest == ""
    assert len(peer_store.remote_advertisements(original_peer.node.peer_id)) == 1
