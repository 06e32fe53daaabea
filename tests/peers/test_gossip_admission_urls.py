"""Admission at the gossip door (issue 11, case 2): the URL a peer claims binds nothing it does not own,
is stored normalised and bounded, and an old message replayed rewrites nothing.
"""

from __future__ import annotations

from typing import Any

import pytest

from peers.models import Peer
from peers.store import AdvertisementStore
from tests.peers.fake_peers import FakeNode, remote_ad
from tests.peers.gossip_door import (
    generous_rates,  # noqa: F401  (autouse: imported, it applies to this module)
    post,
    send,
)

pytestmark = pytest.mark.django_db


def test_claiming_another_peers_url_changes_no_other_row(peer_store: AdvertisementStore) -> None:
    owner = Peer.objects.create(
        url="http://victim.example", peer_id="a" * 32, public_key="b" * 64, last_exchange_result=Peer.Result.OK
    )
    seed = Peer.objects.create(url="http://seed.example", is_seed=True)
    thief = FakeNode(url="http://victim.example")
    seed_thief = FakeNode(url="http://seed.example")

    assert send(thief, [remote_ad()]).status_code == 200
    assert send(seed_thief, [remote_ad()]).status_code == 200

    owner.refresh_from_db()
    seed.refresh_from_db()
    assert (owner.url, owner.peer_id) == ("http://victim.example", "a" * 32)
    assert (seed.url, seed.peer_id) == ("http://seed.example", None)  # a seed is not bound by a claim
    claimed = Peer.objects.get(peer_id=thief.peer_id)
    assert claimed.url is None and claimed.claimed_url == "http://victim.example"
    assert not Peer.objects.filter(url__contains="#").exists()


def test_a_replayed_old_message_rewrites_nothing(peer_store: AdvertisementStore) -> None:
    node = FakeNode(url="http://first.example")
    old_body, old_signature = node.signed([remote_ad("old")])
    assert post(old_body, old_signature).status_code == 200
    node.url = "http://second.example"
    assert send(node, [remote_ad("current")]).status_code == 200

    response = post(old_body, old_signature)

    assert response.status_code == 409
    row = Peer.objects.get(peer_id=node.peer_id)
    assert row.claimed_url == "http://second.example"
    assert [entry.fields["name"] for entry in peer_store.remote_advertisements(node.peer_id)] == ["current"]


@pytest.mark.parametrize(
    ("url", "stored"),
    [
        ("HTTP://Node.Example:80/", "http://node.example"),
        ("https://node.example:443/base/", "https://node.example/base"),
        ("http://[::1]:8000", "http://[::1]:8000"),
    ],
)
def test_a_claimed_url_is_stored_normalised(peer_store: AdvertisementStore, url: str, stored: str) -> None:
    node = FakeNode(url=url)

    assert send(node, []).status_code == 200
    assert Peer.objects.get(peer_id=node.peer_id).claimed_url == stored


@pytest.mark.parametrize(
    "url",
    [
        "http://node.example/" + "a" * 200,
        "http://node.example/?x=",
        "http://user:secret@node.example",
        "gopher://node.example",
        "http://node.example/#frag",
    ],
    ids=["too-long", "query", "credentials", "scheme", "fragment"],
)
def test_an_unusable_url_is_refused_naming_url(peer_store: AdvertisementStore, url: str) -> None:
    response = send(FakeNode(url=url), [remote_ad()])

    assert response.status_code == 400
    assert response.json()["detail"].startswith("url")
    assert not Peer.objects.exists()


def test_learnt_urls_are_normalised_bounded_and_never_evict(peer_store: AdvertisementStore, settings: Any) -> None:
    settings.GOSSIP_MAX_PEERS = 8
    node = FakeNode()
    references = [{"url": f"http://learnt-{index}.example/"} for index in range(20)]

    assert send(node, [], peers=references).status_code == 200

    learnt = list(Peer.objects.filter(peer_id__isnull=True).values_list("url", flat=True))
    assert len(learnt) == 2  # a quarter of GOSSIP_MAX_PEERS at most
    assert all(not url.endswith("/") for url in learnt)


def test_a_peer_whose_bound_url_fails_is_tried_at_its_own_latest_claim(peer_store: AdvertisementStore) -> None:
    node = FakeNode(url="http://new-home.example")
    send(node, [])
    Peer.objects.filter(peer_id=node.peer_id).update(url="http://old-home.example")
    peer = Peer.objects.get(peer_id=node.peer_id)
    assert peer.contact_url == "http://old-home.example"

    Peer.objects.filter(pk=peer.pk).update(consecutive_failures=1)
    peer.refresh_from_db()

    assert peer.contact_url == "http://new-home.example"
    assert peer.url == "http://old-home.example"  # bound again only when the new URL answers as this peer
