"""Relayed gossip, the sending side: this process's real `exchange_with` talking over real HTTP to a real
node (a gunicorn process), the bodies recorded as they went over the wire.

Between two relaying nodes an unchanged exchange is one digest each way; a node that speaks only the
original exchange (`GOSSIP_RELAY=false`) keeps getting exactly that, and never a relayed set.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest
from cryptography.hazmat.primitives import serialization

from peers.gossip import records
from peers.gossip.origins import digest
from peers.gossip.relay import now_ms
from peers.models import OriginSet, Peer
from peers.store import AdvertisementStore
from tests.helpers import wait_until
from tests.nodes import Node
from tests.peers.fake_peers import CountingListener, FakeNode, remote_ad
from tests.peers.gossip_door import (
    generous_rates,  # noqa: F401  (autouse: imported, it applies to this module)
    post,
)
from tests.peers.wire import Exchanges, advertise_on, exchange, local_inputs
from tests.plugin import SESSION_REDIS

pytestmark = pytest.mark.django_db

RELAY_FIELDS = {"originsDigest", "originVersions", "records"}


@pytest.fixture
def node_b() -> Iterator[Node]:
    node = Node("relay-b", SESSION_REDIS)
    node.start_web()
    yield node
    node.stop_all()


@pytest.fixture
def original_node() -> Iterator[Node]:
    node = Node("original", SESSION_REDIS, GOSSIP_RELAY="false")
    node.start_web()
    yield node
    node.stop_all()


def test_an_unchanged_relay_exchange_is_one_digest_each_way_under_1_kb_with_10k_registers(
    peer_store: AdvertisementStore, node_b: Node, wire: Exchanges
) -> None:
    peer_store.apply_bulk(local_inputs(10_000))
    advertise_on(node_b, 10_000)
    assert exchange(node_b) == "ok"  # first contact: the original message, then the signed sets
    assert Peer.objects.get(peer_id__isnull=False).speaks_relay
    assert any(orjson.loads(request).get("records") for request, _ in wire)  # our set went as a signed set
    sent = len(wire)

    assert exchange(node_b) == "ok"

    ((request, reply),) = wire[sent:]  # Syn and Ack: the digests were equal, nothing more was sent
    assert reply is not None
    assert len(request) <= 1024 and len(reply) <= 1024, (len(request), len(reply))
    assert set(orjson.loads(request)) & (RELAY_FIELDS | {"advertisements"}) == {"originsDigest"}
    assert set(orjson.loads(reply)) & (RELAY_FIELDS | {"advertisements"}) == {"originsDigest"}
    assert len(peer_store.remote_advertisements()) == 10_000
    assert len(node_b.available_ids(local=False)) == 10_000


def test_a_node_of_the_original_exchange_gets_only_this_nodes_own_set_never_a_relayed_one(
    peer_store: AdvertisementStore, original_node: Node, wire: Exchanges
) -> None:
    peer_store.apply_bulk(local_inputs(3))
    relayed = _a_relayed_set_held_here()
    advertise_on(original_node, 2)

    assert exchange(original_node) == "ok"
    assert exchange(original_node) == "ok"

    assert wire and all(not set(orjson.loads(request)) & RELAY_FIELDS for request, _ in wire)
    assert all(reply is not None and not set(orjson.loads(reply)) & RELAY_FIELDS for _, reply in wire)
    assert not Peer.objects.get(url=original_node.url).speaks_relay
    own = {entry.register_id for entry in peer_store.local_advertisements()}
    assert original_node.available_ids(local=False) == own  # ours, and not the relayed origin's
    assert relayed["registerId"] in {entry.register_id for entry in peer_store.remote_advertisements()}
    assert len(original_node.available_ids(local=True)) == 2
    assert original_node.available_ids(local=True) <= {e.register_id for e in peer_store.remote_advertisements()}


def _a_relayed_set_held_here() -> dict[str, str]:
    """A set of another origin, brought by a relay that is not its origin, taken by this node."""
    origin, relay_node = FakeNode(name="far-origin"), FakeNode(name="relay")
    advertisement = remote_ad("far-register")
    private = origin.key.private_bytes(
        serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
    ).hex()
    signed = records.publish(
        private,
        url=origin.url,
        name=origin.name,
        sequence=1,
        issued_at_ms=now_ms(),
        ttl_ms=60_000,
        advertisements=[advertisement],
    )
    body, signature = relay_node.relay_message({"originsDigest": digest({}), "records": [signed.wire()]})
    assert post(body, signature).status_code == 200
    assert OriginSet.objects.filter(origin_id=origin.peer_id, sequence=1).exists()
    return advertisement


def test_a_set_taken_sets_off_a_round_so_news_goes_on_without_waiting_for_the_next_interval() -> None:
    listener = CountingListener()  # the node's seed: it counts the node's calls
    node = Node("news", SESSION_REDIS, PEER_SEEDS=listener.url)
    try:
        node.start_web()
        calls = wait_until(lambda: listener.connections, timeout=20, message="no start-up round")
        origin = FakeNode(name="far-origin")
        private = origin.key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        ).hex()
        signed = records.publish(
            private, url=origin.url, name="far", sequence=1, issued_at_ms=now_ms(), ttl_ms=60_000, advertisements=[]
        )
        step = {"originsDigest": digest({}), "records": [signed.wire()]}
        body, signature = FakeNode(name="relay").relay_message(step)

        assert FakeNode.post_to(origin, node.url, body, signature).status_code == 200

        wait_until(lambda: listener.connections > calls, timeout=20, message="no round followed the news")
    finally:
        node.stop_all()
        listener.stop()


def test_a_peer_that_stops_relaying_gets_the_original_exchange_from_the_next_round(
    peer_store: AdvertisementStore, original_node: Node, wire: Exchanges
) -> None:
    peer_store.apply_bulk(local_inputs(2))
    assert exchange(original_node) == "ok"
    Peer.objects.filter(url=original_node.url).update(speaks_relay=True)  # as it was before its relaying went off

    assert exchange(original_node) == "rejected"  # it refused the relay message (400)
    assert not Peer.objects.get(url=original_node.url).speaks_relay

    assert exchange(original_node) == "ok"
    assert not set(orjson.loads(wire[-1][0])) & RELAY_FIELDS
    assert original_node.available_ids(local=False) == {e.register_id for e in peer_store.local_advertisements()}
