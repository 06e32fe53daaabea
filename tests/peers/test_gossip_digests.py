"""Gossip digests: an unchanged set travels as its SHA-256, and a receiver that lacks the set asks for it.

This file: the receiving side, driven in-process (the exchange view through Django's test client, real
signed messages from `FakeNode`, the real store on the session's Redis). The sending side, to a real
node over real HTTP: test_gossip_digests_sending.py.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from peers.models import Peer
from peers.store import AdvertisementInput, AdvertisementStore, get_store, reset_store
from tests.helpers import wait_until
from tests.peers.fake_peers import EXCHANGE, FakeNode, remote_ad
from tests.peers.gossip_door import (
    ORIGINAL_KEYS,
    canonical_digest,
    generous_rates,  # noqa: F401  (autouse: imported, it applies to this module)
)

pytestmark = pytest.mark.django_db

DIGESTS_HEADER = "X-Sorcha-Gossip-Digests"


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
