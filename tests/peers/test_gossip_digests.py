"""Gossip digests: an unchanged set travels as its SHA-256, and a receiver that lacks the set asks for it.

The receiving side is driven in-process (the exchange view through Django's test client, real
signed messages from `FakeNode`, the real store on the session's Redis). The sending side is
this process's real `exchange_with` talking over real HTTP to a real node (a gunicorn process),
with the bodies that went over the wire recorded as `outbound.post` sent and read them.
"""

from __future__ import annotations

import hashlib
import json
import socket
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from peers import outbound
from peers.gossip.exchange import exchange_with
from peers.models import Peer
from peers.store import AdvertisementInput, AdvertisementStore, get_store, reset_store
from tests.helpers import wait_until
from tests.nodes import Node
from tests.peers.fake_peers import EXCHANGE, SIGNATURE_HEADER, FakeNode, SocketServer, remote_ad
from tests.plugin import SESSION_REDIS

pytestmark = pytest.mark.django_db

DIGESTS_HEADER = "X-Sorcha-Gossip-Digests"
ORIGINAL_KEYS = {"peerId", "publicKey", "url", "name", "sequence", "sentAt", "advertisements", "peers"}


@pytest.fixture(autouse=True)
def generous_rates(settings: Any) -> None:
    settings.GOSSIP_RATE_PER_ADDRESS = 1_000_000
    settings.GOSSIP_RATE_PER_PEER = 1_000_000


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


def post(body: bytes, signature: str, digests: bool = True) -> Any:
    headers = {"HTTP_X_SORCHA_SIGNATURE": signature}
    if digests:
        headers["HTTP_X_SORCHA_GOSSIP_DIGESTS"] = "1"
    return APIClient().post(EXCHANGE, data=body, content_type="application/json", **headers)


def send_full(node: FakeNode, advertisements: list[dict[str, Any]], **overrides: Any) -> Any:
    body, signature = node.signed(advertisements, advertisementsDigest=canonical_digest(advertisements), **overrides)
    return post(body, signature)


def send_digest_only(node: FakeNode, digest: str, **overrides: Any) -> Any:
    message = node.message([], advertisementsDigest=digest, **overrides)
    del message["advertisements"]
    body = orjson.dumps(message)
    return post(body, node.sign(body))


def expiries(store: AdvertisementStore, peer_id: str) -> dict[str, float]:
    return {entry.register_id: entry.expires_at for entry in store.remote_advertisements(peer_id)}


# ---------------------------------------------------------------- receiving
def test_a_digest_only_message_refreshes_the_ttl_of_the_set_held_for_that_peer(
    peer_store: AdvertisementStore,
) -> None:
    node = FakeNode()
    advertisements = [remote_ad("first"), remote_ad("second")]
    assert send_full(node, advertisements).status_code == 200
    before = expiries(peer_store, node.peer_id)
    # (until a refresh made now would expire later than the first write: the clock has moved on)
    wait_until(lambda: time.time() + peer_store.ttl > max(before.values()), message="the clock past the first write")

    response = send_digest_only(node, canonical_digest(advertisements))

    assert response.status_code == 200
    after = expiries(peer_store, node.peer_id)
    assert after.keys() == before.keys() == {ad["registerId"] for ad in advertisements}
    assert all(after[register_id] > before[register_id] for register_id in before)
    assert Peer.objects.get(peer_id=node.peer_id).last_sequence == node.sequence


def test_the_reply_says_which_digest_of_the_senders_set_is_held_and_lists_this_nodes_set(
    peer_store: AdvertisementStore,
) -> None:
    peer_store.apply_bulk([AdvertisementInput(uuid.uuid4().hex, True, name="local-ledger")])
    node = FakeNode()
    advertisements = [remote_ad()]

    reply = orjson.loads(send_full(node, advertisements).content)

    assert reply["heldDigest"] == canonical_digest(advertisements)
    assert [ad["name"] for ad in reply["advertisements"]] == ["local-ledger"]
    assert reply["advertisementsDigest"] == canonical_digest(reply["advertisements"])


def test_the_reply_is_the_digest_alone_when_the_sender_holds_this_nodes_current_set(
    peer_store: AdvertisementStore,
) -> None:
    peer_store.apply_bulk([AdvertisementInput(uuid.uuid4().hex, True, name="local-ledger")])
    node = FakeNode()
    advertisements = [remote_ad()]
    ours = orjson.loads(send_full(node, advertisements).content)["advertisementsDigest"]

    response = send_digest_only(node, canonical_digest(advertisements), heldDigest=ours)

    reply = orjson.loads(response.content)
    assert "advertisements" not in reply
    assert reply["advertisementsDigest"] == ours
    assert reply["heldDigest"] == canonical_digest(advertisements)


def test_a_digest_from_a_peer_never_seen_is_answered_409_need_set_and_records_nothing(
    peer_store: AdvertisementStore,
) -> None:
    node = FakeNode()

    response = send_digest_only(node, canonical_digest([remote_ad()]))

    assert response.status_code == 409
    assert response.json()["needSet"] is True
    assert response.json()["detail"].startswith("advertisementsDigest:")
    assert not Peer.objects.exists()


@pytest.mark.parametrize("lost_by", ["forgotten_by_the_store", "ban_and_unban", "a_changed_set"])
def test_a_digest_of_a_set_not_held_any_more_is_answered_409_need_set_and_applies_nothing(
    peer_store: AdvertisementStore, api: APIClient, lost_by: str
) -> None:
    node = FakeNode()
    advertisements = [remote_ad()]
    assert send_full(node, advertisements).status_code == 200
    peer = Peer.objects.get(peer_id=node.peer_id)
    digest = canonical_digest(advertisements)
    if lost_by == "forgotten_by_the_store":  # as after a restart that lost Redis
        peer_store.forget_peer(node.peer_id)
    elif lost_by == "ban_and_unban":
        api.post(f"/api/peers/{peer.pk}/ban")
        api.post(f"/api/peers/{peer.pk}/unban")
    else:
        digest = canonical_digest([*advertisements, remote_ad("new")])

    response = send_digest_only(node, digest)

    assert response.status_code == 409 and response.json()["needSet"] is True
    assert Peer.objects.get(pk=peer.pk).last_sequence == node.sequence - 1  # the digest-only one not recorded
    held = peer_store.remote_advertisements(node.peer_id)
    assert [entry.register_id for entry in held] == (
        [ad["registerId"] for ad in advertisements] if lost_by == "a_changed_set" else []
    )


def test_a_digest_of_a_set_that_expired_is_answered_409_need_set(settings: Any, prefix: str) -> None:
    settings.REDIS_KEY_PREFIX = prefix
    settings.ADVERTISEMENT_TTL = 0.5
    reset_store()
    try:
        node = FakeNode()
        advertisements = [remote_ad()]
        assert send_full(node, advertisements).status_code == 200
        wait_until(lambda: not get_store().remote_advertisements(node.peer_id), message="the set expired")

        response = send_digest_only(node, canonical_digest(advertisements))

        assert response.status_code == 409 and response.json()["needSet"] is True
    finally:
        reset_store()


def test_a_digest_that_is_not_the_lists_is_refused_naming_the_field_and_applies_nothing(
    peer_store: AdvertisementStore,
) -> None:
    node = FakeNode()
    listed = [remote_ad("listed")]
    body, signature = node.signed(listed, advertisementsDigest=canonical_digest([remote_ad("other")]))

    response = post(body, signature)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("advertisementsDigest:")
    assert peer_store.available() == []
    assert not Peer.objects.exists()


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("advertisementsDigest", "ab" * 31),
        ("advertisementsDigest", "AB" * 32),
        ("advertisementsDigest", "ab" * 32 + "\n"),
        ("advertisementsDigest", 12345),
        ("advertisementsDigest", None),
        ("heldDigest", "g" * 64),
        ("heldDigest", "ab" * 33),
        ("heldDigest", None),
    ],
    ids=["short", "upper-case", "final-newline", "number", "null", "not-hex", "long", "held-null"],
)
def test_a_malformed_digest_is_refused_naming_the_field(peer_store: AdvertisementStore, field: str, value: Any) -> None:
    node = FakeNode()
    advertisements = [remote_ad()]
    body, signature = node.signed(
        advertisements, **{"advertisementsDigest": canonical_digest(advertisements), field: value}
    )

    response = post(body, signature)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(field)
    assert peer_store.available() == []


def test_a_message_with_neither_the_set_nor_its_digest_is_refused_naming_advertisements(
    peer_store: AdvertisementStore,
) -> None:
    node = FakeNode()
    message = node.message([])
    del message["advertisements"]
    body = orjson.dumps(message)

    response = post(body, node.sign(body))

    assert response.status_code == 400
    assert response.json()["detail"].startswith("advertisements:")


def test_a_peer_without_digests_gets_the_original_reply_and_its_set_is_applied(
    peer_store: AdvertisementStore,
) -> None:
    peer_store.apply_bulk([AdvertisementInput(uuid.uuid4().hex, True, name="local-ledger")])
    node = FakeNode()
    advertisement = remote_ad()
    body, signature = node.signed([advertisement])

    response = post(body, signature, digests=False)

    assert response.status_code == 200
    assert set(orjson.loads(response.content)) == ORIGINAL_KEYS
    assert [entry.register_id for entry in peer_store.remote_advertisements(node.peer_id)] == [
        advertisement["registerId"]
    ]


# ---------------------------------------------------------------- sending, to a real node over real HTTP
@pytest.fixture
def node_b() -> Iterator[Node]:
    node = Node("digest-b", SESSION_REDIS)
    node.start_web()
    yield node
    node.stop_all()


Exchanges = list[tuple[bytes, bytes | None]]


@pytest.fixture
def wire(monkeypatch: pytest.MonkeyPatch) -> Exchanges:
    """Every (request body, reply body) this process's outbound calls sent and read; None: no 200 reply."""
    recorded: Exchanges = []
    real_post = outbound.post

    def recording_post(target: Any, body: bytes, *args: Any) -> outbound.Reply:
        try:
            reply = real_post(target, body, *args)
        except outbound.ExchangeFailed:
            recorded.append((body, None))
            raise
        recorded.append((body, reply.body))
        return reply

    monkeypatch.setattr(outbound, "post", recording_post)
    return recorded


def local_inputs(count: int, prefix: str = "register") -> list[AdvertisementInput]:
    return [
        AdvertisementInput(
            uuid.uuid4().hex,
            True,
            name=f"{prefix}-{n}",
            description="a public register",
            latest_version=n,
            latest_docket_version=n,
            is_full_replica=True,
        )
        for n in range(count)
    ]


def advertise_on(node: Node, count: int) -> None:
    node.advertise(
        [
            {"registerId": uuid.uuid4().hex, "isPublic": True, "name": f"b-register-{n}", "latestVersion": n}
            for n in range(count)
        ]
    )


def exchange(node: Node) -> str:
    peer = Peer.objects.filter(peer_id__isnull=False).first() or Peer.objects.get_or_create(url=node.url)[0]
    return exchange_with(peer)


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
