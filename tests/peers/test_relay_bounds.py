"""Relayed sets at this node's door (the real exchange view, in process): what an operator's bans,
allowlist and caps do to sets whoever relays them, and how long a relayed register lives.

A relay is a `FakeNode` sending relay messages; the sets it carries are signed by other origins'
keys, as a real relay forwards them.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from rest_framework.test import APIClient

from peers import peer_actions
from peers.gossip import records
from peers.gossip.origins import digest
from peers.gossip.relay import now_ms, own_set
from peers.models import OriginSet, Peer
from peers.store import AdvertisementInput, AdvertisementStore
from peers.store.model import format_micros
from tests.helpers import wait_until
from tests.peers.fake_peers import FakeNode, remote_ad
from tests.peers.gossip_door import (
    generous_rates,  # noqa: F401  (autouse: imported, it applies to this module)
    post,
)
from tests.test_metrics import scrape

pytestmark = pytest.mark.django_db


class Origin:
    """Another node's key, publishing signed sets of its registers."""

    def __init__(self, name: str = "origin") -> None:
        self.node = FakeNode(name=name)
        self.id = self.node.peer_id
        self.ads = [remote_ad(f"{name}-register")]
        self.sequence = 0

    def publish(self, issued_at_ms: int | None = None, ttl_ms: int = 60_000) -> records.SignedSet:
        self.sequence += 1
        private = self.node.key.private_bytes(
            serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
        ).hex()
        return records.publish(
            private,
            url=self.node.url,
            name=self.node.name,
            sequence=self.sequence,
            issued_at_ms=now_ms() if issued_at_ms is None else issued_at_ms,
            ttl_ms=ttl_ms,
            advertisements=self.ads,
        )


def relay(relay_node: FakeNode, *sets: records.SignedSet, **step: Any) -> None:
    body, signature = relay_node.relay_message(
        {"originsDigest": digest({}), "records": [signed.wire() for signed in sets], **step}
    )
    response = post(body, signature)
    assert response.status_code == 200, response.content


def refused(api: APIClient, reason: str) -> float:
    return scrape(api).get(("sorcha_gossip_sets_refused_total", (("reason", reason),)), 0.0)


def held_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.remote_advertisements()}


def test_a_banned_origin_is_refused_whoever_relays_it_and_unbanned_is_taken_again(
    peer_store: AdvertisementStore, api: APIClient
) -> None:
    origin, first, second = Origin(), FakeNode(name="relay-1"), FakeNode(name="relay-2")
    relay(first, origin.publish())
    assert held_ids(peer_store) == {origin.ads[0]["registerId"]}

    peer_actions.ban_origin(origin.id)  # an origin known only through relays: it has no peer row

    assert held_ids(peer_store) == set()
    assert not Peer.objects.filter(peer_id=origin.id).exists()
    before = refused(api, "banned")
    relay(second, origin.publish())
    assert held_ids(peer_store) == set()
    assert refused(api, "banned") == before + 1

    peer_actions.unban_origin(origin.id)
    relay(second, origin.publish())
    assert held_ids(peer_store) == {origin.ads[0]["registerId"]}


def test_in_allowlist_mode_only_admitted_origins_sets_are_taken(
    peer_store: AdvertisementStore, api: APIClient, settings: Any
) -> None:
    relay_node, listed, stranger = FakeNode(name="relay"), Origin("listed"), Origin("stranger")
    settings.PEER_ADMISSION = "allowlist"
    settings.PEER_ALLOWLIST = [relay_node.peer_id, listed.id]
    before = refused(api, "not_admitted")

    relay(relay_node, listed.publish(), stranger.publish())

    assert held_ids(peer_store) == {listed.ads[0]["registerId"]}
    assert refused(api, "not_admitted") == before + 1


def test_origins_past_the_cap_are_refused_and_a_verified_one_takes_a_relayed_only_ones_place(
    peer_store: AdvertisementStore, api: APIClient, settings: Any
) -> None:
    settings.GOSSIP_MAX_ORIGINS = 2
    relay_node = FakeNode(name="relay")
    first, second, third, verified = Origin("first"), Origin("second"), Origin("third"), Origin("verified")
    relay(relay_node, first.publish(), second.publish())
    before = refused(api, "origins_cap")

    relay(relay_node, third.publish())
    assert refused(api, "origins_cap") == before + 1
    assert third.ads[0]["registerId"] not in held_ids(peer_store)

    Peer.objects.create(peer_id=verified.id, public_key=verified.node.public_key, url="http://203.0.113.7")
    relay(relay_node, verified.publish())
    held = held_ids(peer_store)
    assert verified.ads[0]["registerId"] in held
    assert len(held & {first.ads[0]["registerId"], second.ads[0]["registerId"]}) == 1  # one made room
    assert OriginSet.objects.exclude(origin_id=relay_node.peer_id).filter(banned=False).count() <= 3  # + this node


def row_of(store: AdvertisementStore, register_id: str) -> dict[str, Any]:
    (row,) = [row for row in store.available() if row["registerId"] == register_id]
    return row


def test_a_relayed_register_lives_until_its_origins_expiry_and_was_last_seen_when_issued(
    peer_store: AdvertisementStore, settings: Any
) -> None:
    ttl_ms = int(settings.ADVERTISEMENT_TTL * 1000)  # the origin's TTL is this node's (the default)
    origin, relay_node = Origin(), FakeNode(name="relay")
    issued = now_ms() - 10_000
    relay(relay_node, origin.publish(issued_at_ms=issued, ttl_ms=ttl_ms))

    (entry,) = peer_store.remote_advertisements()
    assert entry.peer_id == origin.id
    assert entry.expires_at == pytest.approx((issued + ttl_ms) / 1000, abs=0.002)
    row = row_of(peer_store, origin.ads[0]["registerId"])
    assert row["peerCount"] == 1 and row["directPeerCount"] == 0
    # lastSeen is when the origin issued the set, not when a relay brought it.
    assert row["lastSeen"] == format_micros(issued * 1000)


def test_a_set_meant_to_live_longer_than_this_nodes_ttl_is_held_one_ttl_from_its_issue(
    peer_store: AdvertisementStore, settings: Any
) -> None:
    ttl_ms = int(settings.ADVERTISEMENT_TTL * 1000)
    origin, relay_node = Origin(), FakeNode(name="relay")
    issued = now_ms() - 5_000
    relay(relay_node, origin.publish(issued_at_ms=issued, ttl_ms=ttl_ms + 60_000))  # within TTL + skew: taken

    (entry,) = peer_store.remote_advertisements()
    assert entry.expires_at == pytest.approx((issued + ttl_ms) / 1000, abs=0.002)
    assert row_of(peer_store, origin.ads[0]["registerId"])["lastSeen"] == format_micros(issued * 1000)


def test_a_set_with_a_shorter_life_leaves_at_its_expiry_and_is_never_shown_as_seen_later_than_issued(
    peer_store: AdvertisementStore,
) -> None:
    origin, relay_node = Origin(), FakeNode(name="relay")
    issued = now_ms() - 5_000
    relay(relay_node, origin.publish(issued_at_ms=issued, ttl_ms=40_000))

    (entry,) = peer_store.remote_advertisements()
    assert entry.expires_at == pytest.approx((issued + 40_000) / 1000, abs=0.002)
    assert row_of(peer_store, origin.ads[0]["registerId"])["lastSeen"] <= format_micros(issued * 1000)


def test_without_discovery_urls_heard_from_peers_are_never_kept(peer_store: AdvertisementStore, settings: Any) -> None:
    settings.GOSSIP_DISCOVERY = False
    relay_node = FakeNode(name="relay")

    relay(relay_node, peers=[{"url": "http://198.51.100.9"}])

    assert not Peer.objects.filter(url="http://198.51.100.9").exists()
    settings.GOSSIP_DISCOVERY = True
    relay(relay_node, peers=[{"url": "http://198.51.100.9"}])
    assert Peer.objects.filter(url="http://198.51.100.9").exists()


def test_this_nodes_set_is_published_again_when_its_registers_change_and_at_half_its_ttl(
    peer_store: AdvertisementStore, settings: Any
) -> None:
    settings.ADVERTISEMENT_TTL = 2.0
    first, published = own_set()
    assert published
    assert own_set() == (first, False)  # unchanged, and not yet half its TTL old

    peer_store.apply_bulk([AdvertisementInput(uuid.uuid4().hex, True, name="new-register")])
    changed, published = own_set()
    assert published
    body = records.parse(changed)
    assert body.sequence > records.parse(first).sequence
    assert [ad.name for ad in body.advertisements] == ["new-register"]

    wait_until(lambda: own_set()[1], timeout=10, message="the set was never published again")
    again = records.parse(own_set()[0])
    assert again.sequence > body.sequence
    assert again.issued_at_ms >= body.issued_at_ms + 1_000  # half of the 2 s TTL
    assert again.expires_at_ms == again.issued_at_ms + 2_000


def test_a_set_whose_url_holds_a_nul_is_refused_and_the_rest_of_the_message_is_taken(
    peer_store: AdvertisementStore, api: APIClient
) -> None:
    hostile, honest, relay_node = Origin("hostile"), Origin("honest"), FakeNode(name="relay")
    hostile.node.url = "http://203.0.113.9/\x00"  # PostgreSQL refuses NUL: it must never reach a row
    before = refused(api, "malformed")

    relay(relay_node, hostile.publish(), honest.publish())

    assert refused(api, "malformed") == before + 1
    assert held_ids(peer_store) == {honest.ads[0]["registerId"]}
    assert not OriginSet.objects.filter(origin_id=hostile.id).exists()


def test_in_allowlist_mode_a_seeds_set_is_taken_as_its_messages_are(
    peer_store: AdvertisementStore, settings: Any
) -> None:
    seed, relay_node = Origin("seed"), FakeNode(name="relay")
    settings.PEER_ADMISSION = "allowlist"
    settings.PEER_ALLOWLIST = [relay_node.peer_id]
    Peer.objects.create(peer_id=seed.id, public_key=seed.node.public_key, url="http://203.0.113.8", is_seed=True)

    relay(relay_node, seed.publish())

    assert held_ids(peer_store) == {seed.ads[0]["registerId"]}
