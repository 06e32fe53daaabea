"""Admission and bounds at the gossip door (issue 11): what a message may carry, caps, rates, allowlist.

URL claims and replays: test_gossip_admission_urls.py; operators and metrics: test_gossip_admission_operators.py.

In-process: the exchange view through Django's test client, the real store and rate counters
on the session's Redis. Real node processes: tests/peers/test_hostile_peers.py.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from peers import admission, peer_actions
from peers.api.peer_json import describe_peer
from peers.models import Peer
from peers.store import AdvertisementStore
from sorcha_site.bounds import MAX_VERSION
from tests.peers.fake_peers import FakeNode, long_ago, remote_ad
from tests.peers.gossip_door import (
    generous_rates,  # noqa: F401  (autouse: imported, it applies to this module)
    metric_samples,
    send,
)

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- case 6: sentAt
@pytest.mark.parametrize(
    "sent_at",
    [long_ago(301), (datetime.now(tz=UTC) + timedelta(seconds=400)).isoformat(), "1999-12-31T00:00:00+00:00"],
    ids=["older-than-ttl", "beyond-clock-skew", "before-2000"],
)
def test_a_sent_at_out_of_bounds_is_refused_naming_sent_at_and_records_nothing(
    peer_store: AdvertisementStore, sent_at: str
) -> None:
    node = FakeNode()

    response = send(node, [remote_ad()], sentAt=sent_at)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("sentAt:")
    assert not Peer.objects.exists()
    assert peer_store.available() == []


# ---------------------------------------------------------------- case 5: versions past 2^53
def test_a_version_above_2_to_the_53_is_refused_naming_the_field(peer_store: AdvertisementStore) -> None:
    response = send(FakeNode(), [remote_ad(latestVersion=MAX_VERSION + 1)])

    assert response.status_code == 400
    assert response.json()["detail"].startswith("advertisements[0].latestVersion")
    assert not Peer.objects.exists()


@pytest.mark.parametrize(
    "advertisement, overrides, field",
    [
        pytest.param({"name": "pay\x00here"}, {}, "advertisements[0].name", id="nul-in-an-advertised-name"),
        pytest.param({"name": "  "}, {}, "advertisements[0].name", id="blank-advertised-name"),
        pytest.param({"description": "a\x00"}, {}, "advertisements[0].description", id="nul-in-a-description"),
        pytest.param({}, {"name": "node\x00"}, "name", id="nul-in-the-node-name"),
    ],
)
def test_text_the_peer_api_refuses_is_refused_at_the_gossip_door_too(
    peer_store: AdvertisementStore, advertisement: dict[str, Any], overrides: dict[str, Any], field: str
) -> None:
    response = send(FakeNode(), [remote_ad(**advertisement)], **overrides)

    assert response.status_code == 400
    assert response.json()["detail"].startswith(field)
    assert not Peer.objects.exists()
    assert peer_store.available() == []


def test_a_peer_banned_while_its_message_is_applied_keeps_nothing(
    peer_store: AdvertisementStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    node = FakeNode()
    assert send(node, [remote_ad()]).status_code == 200
    peer = Peer.objects.get(peer_id=node.peer_id)
    # The operator bans it at the worst moment: after the message's checks, as its set is applied.
    apply = peer_store.replace_remote

    def banned_meanwhile(peer_id: str, ads: Any) -> Any:
        result = apply(peer_id, ads)
        peer_actions.set_banned(Peer.objects.get(pk=peer.pk), True)
        return result

    monkeypatch.setattr(peer_store, "replace_remote", banned_meanwhile)

    response = send(node, [remote_ad(), remote_ad()])

    assert response.status_code == 403
    assert peer_store.remote_advertisements(node.peer_id) == []


# ---------------------------------------------------------------- case 1: flood caps
def test_a_new_sender_over_the_peer_cap_is_refused_with_429_and_counted(
    peer_store: AdvertisementStore, settings: Any, api: APIClient
) -> None:
    settings.GOSSIP_MAX_PEERS = 5
    for _ in range(5):
        assert send(FakeNode(), [remote_ad()]).status_code == 200

    response = send(FakeNode(), [remote_ad()])

    assert response.status_code == 429
    assert response.json()["detail"].startswith("peerId:")
    assert int(response["Retry-After"]) >= 1
    assert Peer.objects.count() == 5
    assert len(peer_store.remote_advertisements()) == 5
    assert metric_samples(api)[("sorcha_gossip_refusals_total", (("reason", "peer_cap"),))] >= 1


def test_the_stalest_other_row_makes_room_but_seeds_and_recent_peers_never_do(
    peer_store: AdvertisementStore, settings: Any
) -> None:
    settings.GOSSIP_MAX_PEERS = 4
    Peer.objects.create(url="http://seed.example", is_seed=True)
    stale, recent = FakeNode(), FakeNode()
    send(stale, [remote_ad()])
    send(recent, [remote_ad()])
    Peer.objects.create(url="http://learnt.example")  # never answered: evictable, but newer than `stale`
    Peer.objects.filter(peer_id=stale.peer_id).update(last_seen=timezone.now() - timedelta(seconds=3600))
    Peer.objects.filter(url="http://learnt.example").update(first_seen=timezone.now() - timedelta(seconds=60))

    newcomer = FakeNode()
    assert send(newcomer, [remote_ad()]).status_code == 200

    kept = set(Peer.objects.values_list("peer_id", "url"))
    assert (None, "http://seed.example") in kept
    assert Peer.objects.filter(peer_id=recent.peer_id).exists()
    assert not Peer.objects.filter(peer_id=stale.peer_id).exists()  # the stalest went, with its ads
    assert peer_store.remote_advertisements(stale.peer_id) == []
    assert Peer.objects.filter(peer_id=newcomer.peer_id).exists()
    assert Peer.objects.count() == 4


def test_a_message_that_would_pass_the_remote_advertisement_cap_is_refused_and_counted(
    peer_store: AdvertisementStore, settings: Any, api: APIClient
) -> None:
    settings.GOSSIP_MAX_REMOTE_ADS = 5
    first, second = FakeNode(), FakeNode()
    assert send(first, [remote_ad() for _ in range(3)]).status_code == 200

    response = send(second, [remote_ad() for _ in range(3)])

    assert response.status_code == 413
    assert response.json()["detail"].startswith("advertisements:")
    assert not Peer.objects.filter(peer_id=second.peer_id).exists()
    assert len(peer_store.remote_advertisements()) == 3
    # A peer shrinking or keeping its own set is always accepted.
    assert send(first, [remote_ad() for _ in range(2)]).status_code == 200
    assert metric_samples(api)[("sorcha_gossip_refusals_total", (("reason", "remote_ads_cap"),))] >= 1


def test_more_advertisements_than_the_bulk_limit_from_one_peer_are_refused(
    peer_store: AdvertisementStore, settings: Any
) -> None:
    node = FakeNode()
    limit = settings.SORCHA_BULK_MAX_ITEMS
    ads = [{"registerId": uuid.uuid4().hex, "name": "n"} for _ in range(limit + 1)]

    response = send(node, ads)

    assert response.status_code == 400
    assert response.json()["detail"].startswith("advertisements:")
    assert not Peer.objects.exists()


# ---------------------------------------------------------------- rate limits
def test_an_address_over_its_rate_gets_429_with_retry_after(peer_store: AdvertisementStore, settings: Any) -> None:
    settings.GOSSIP_RATE_PER_ADDRESS = 3
    address = f"10.{uuid.uuid4().int % 250}.{uuid.uuid4().int % 250}.7"
    for _ in range(3):
        assert send(FakeNode(), [], address=address).status_code == 200

    response = send(FakeNode(), [remote_ad()], address=address)

    assert response.status_code == 429
    assert response.json()["detail"].startswith("source:")
    assert 1 <= int(response["Retry-After"]) <= int(settings.GOSSIP_RATE_WINDOW) + 1
    assert Peer.objects.count() == 3
    assert send(FakeNode(), [], address="10.250.250.250").status_code == 200  # other addresses still served


def test_a_peer_over_its_rate_gets_429_whatever_address_it_uses(peer_store: AdvertisementStore, settings: Any) -> None:
    settings.GOSSIP_RATE_PER_PEER = 2
    node = FakeNode()
    assert send(node, [remote_ad()], address="10.0.0.1").status_code == 200
    assert send(node, [remote_ad()], address="10.0.0.2").status_code == 200

    response = send(node, [remote_ad("late")], address="10.0.0.3")

    assert response.status_code == 429
    assert response.json()["detail"].startswith("peerId:")
    assert response["Retry-After"]
    assert [entry.fields["name"] for entry in peer_store.remote_advertisements(node.peer_id)] == ["remote-ledger"]


# ---------------------------------------------------------------- allowlist mode
def test_in_allowlist_mode_a_stranger_is_refused_and_waits_as_pending_until_approved(
    peer_store: AdvertisementStore, settings: Any, api: APIClient
) -> None:
    settings.PEER_ADMISSION = "allowlist"
    stranger = FakeNode()

    response = send(stranger, [remote_ad()])

    assert response.status_code == 403
    assert "allowlist" in response.json()["detail"]
    peer = Peer.objects.get(peer_id=stranger.peer_id)
    assert describe_peer(peer)["status"] == "pending"
    assert peer_store.available() == []
    assert send(stranger, [remote_ad()]).status_code == 403  # still waiting

    assert api.post(f"/api/peers/{peer.pk}/approve").json()["status"] == "never"
    assert send(stranger, [remote_ad()]).status_code == 200
    assert len(peer_store.available()) == 1


def test_in_allowlist_mode_a_listed_peer_id_is_admitted_at_once(peer_store: AdvertisementStore, settings: Any) -> None:
    listed = FakeNode()
    settings.PEER_ADMISSION = "allowlist"
    settings.PEER_ALLOWLIST = [listed.peer_id]

    assert send(listed, [remote_ad()]).status_code == 200
    assert len(peer_store.available()) == 1


def test_an_honest_peer_is_still_answered_with_our_signed_set(peer_store: AdvertisementStore) -> None:
    node = FakeNode()

    response = send(node, [remote_ad()])

    assert response.status_code == 200
    assert orjson.loads(response.content)["peerId"] != node.peer_id


def test_a_sender_just_admitted_is_not_evicted_by_the_next_newcomer(
    peer_store: AdvertisementStore, settings: Any
) -> None:
    # Between admission and the end of its message's handling, another thread may admit a newcomer:
    # the new row already counts as seen, so the newcomer is refused instead of evicting it.
    settings.GOSSIP_MAX_PEERS = 1
    first, second = FakeNode(), FakeNode()
    admission.admit_new_sender(first.peer_id, first.public_key, "first", first.url, 1)

    with pytest.raises(admission.GossipRejected) as refused:
        admission.admit_new_sender(second.peer_id, second.public_key, "second", second.url, 1)

    assert refused.value.reason == "peer_cap"
    assert list(Peer.objects.values_list("peer_id", flat=True)) == [first.peer_id]
