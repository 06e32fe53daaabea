"""The Peer Service's history: pool-size samples (a day of them) and each peer's last exchanges."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import orjson
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from rest_framework.test import APIClient

from peers import history, peer_actions
from peers.gossip.exchange import exchange_with
from peers.models import Peer, PeerExchange, PoolSample
from peers.store import AdvertisementInput, AdvertisementStore
from tasks.schedule import PEERS_SAMPLE_POOL, beat_schedule
from tests.conftest import register_id
from tests.peers.fake_peers import SIGNATURE_HEADER, CannedHTTP, FakeNode, remote_ad
from tests.redis_server import free_port

pytestmark = pytest.mark.django_db

POOL_URL = "/api/store/pool-history"


def sample_at(moment: Any, local: int = 1, remote: int = 2) -> PoolSample:
    return PoolSample.objects.create(sampled_at=moment, local=local, remote=remote)


# ------------------------------------------------------------------------------------------ pool size
def test_a_sample_records_the_pools_local_and_remote_counts(peer_store: AdvertisementStore) -> None:
    # given
    for name in ("one", "two"):
        peer_store.advertise(AdvertisementInput(register_id(), True, name=name))
    peer_store.replace_remote(
        FakeNode().peer_id, [AdvertisementInput(register_id(), True, name=f"r{i}") for i in range(3)]
    )

    # when
    sample = history.sample_pool()

    # then
    assert (sample.local, sample.remote) == (2, 3)
    assert PoolSample.objects.get().pk == sample.pk


def test_samples_older_than_a_day_are_deleted_when_a_sample_is_taken(peer_store: AdvertisementStore) -> None:
    # given
    now = timezone.now()
    old = sample_at(now - timedelta(days=1, minutes=1))
    recent = sample_at(now - timedelta(hours=23))

    # when
    taken = history.sample_pool(now)

    # then
    assert set(PoolSample.objects.values_list("pk", flat=True)) == {recent.pk, taken.pk}
    assert not PoolSample.objects.filter(pk=old.pk).exists()


def test_no_more_than_a_days_worth_of_samples_are_kept(peer_store: AdvertisementStore) -> None:
    # given: more samples within the day than a day holds at one a minute (two beats by mistake)
    now = timezone.now()
    PoolSample.objects.bulk_create(
        PoolSample(sampled_at=now - timedelta(seconds=30 * index), local=0, remote=0) for index in range(1_450, 0, -1)
    )

    # when
    taken = history.sample_pool(now)

    # then
    assert PoolSample.objects.count() == history.POOL_HISTORY_MAX
    assert PoolSample.objects.filter(pk=taken.pk).exists()


def test_the_api_lists_the_last_days_samples_oldest_first(api: APIClient) -> None:
    # given
    now = timezone.now()
    sample_at(now - timedelta(hours=25))
    sample_at(now - timedelta(hours=2), local=4, remote=5)
    sample_at(now - timedelta(hours=1), local=6, remote=7)

    # when
    response = api.get(POOL_URL)

    # then
    assert response.status_code == 200
    body = response.json()
    assert [(row["local"], row["remote"]) for row in body] == [(4, 5), (6, 7)]
    assert set(body[0]) == {"sampledAt", "local", "remote"}
    assert body[0]["sampledAt"] < body[1]["sampledAt"]


def test_the_pool_history_needs_credentials() -> None:
    assert APIClient().get(POOL_URL).status_code == 401


def test_the_pool_history_refuses_a_query_parameter_naming_it(api: APIClient) -> None:
    response = api.get(POOL_URL, {"hours": "2"})

    assert response.status_code == 400
    assert "hours" in response.json()["detail"]


def test_the_beat_samples_the_pool_once_a_minute_on_a_peer_service_node_and_runs_expire() -> None:
    # when
    entry = beat_schedule(serves_registers=False, reconcile_interval=150.0, serves_peers=True)["sample-pool"]

    # then
    assert (entry["task"], entry["schedule"], entry["options"]) == (PEERS_SAMPLE_POOL, 60.0, {"expires": 60.0})
    assert "sample-pool" not in beat_schedule(serves_registers=True, reconcile_interval=150.0)


# ------------------------------------------------------------------------------------------ exchanges
@pytest.fixture
def canned_peer() -> Iterator[CannedHTTP]:
    server = CannedHTTP("200 OK")
    yield server
    server.stop()


def test_an_exchange_with_a_peer_is_recorded_with_its_bytes_and_advertisements(
    peer_store: AdvertisementStore, canned_peer: CannedHTTP
) -> None:
    # given: a peer whose signed reply carries two advertisements
    node = FakeNode(url=canned_peer.url, name="harbour")
    reply, signature = node.signed([remote_ad("one"), remote_ad("two")])
    canned_peer.headers = {"Content-Type": "application/json", SIGNATURE_HEADER: signature}
    canned_peer.body = reply
    seed = Peer.objects.create(url=canned_peer.url, is_seed=True)

    # when
    outcome = exchange_with(seed)

    # then: recorded on the row of the peer that answered (it took over the seed's)
    assert outcome == "ok"
    exchange = PeerExchange.objects.get()
    assert exchange.peer.peer_id == node.peer_id
    assert (exchange.direction, exchange.outcome, exchange.advertisements, exchange.digest_only) == (
        "outbound",
        "ok",
        2,
        False,
    )
    assert exchange.bytes_received == len(reply)
    assert exchange.bytes_sent > 0
    assert exchange.error == ""
    assert 0 <= exchange.duration_seconds < 30


def test_a_failed_exchange_is_recorded_with_its_error(peer_store: AdvertisementStore) -> None:
    # given: nothing listens at the peer's URL
    peer = Peer.objects.create(url=f"http://127.0.0.1:{free_port()}")

    # when
    outcome = exchange_with(peer)

    # then
    exchange = PeerExchange.objects.get(peer=peer)
    assert (exchange.direction, exchange.outcome, exchange.advertisements) == ("outbound", outcome, None)
    assert outcome == "unreachable"
    assert exchange.error and exchange.error == Peer.objects.get(pk=peer.pk).last_error


@pytest.mark.django_db(transaction=True)
def test_an_exchange_a_peer_starts_is_recorded_as_inbound(peer_store: AdvertisementStore, live_server: Any) -> None:
    # given
    node = FakeNode(name="customs")
    body, signature = node.signed([remote_ad("inbound-one")])

    # when
    response = node.post_to(live_server.url, body, signature)

    # then
    assert response.status_code == 200
    exchange = PeerExchange.objects.get(peer__peer_id=node.peer_id)
    assert (exchange.direction, exchange.outcome, exchange.advertisements) == ("inbound", "ok", 1)
    assert (exchange.bytes_received, exchange.bytes_sent) == (len(body), len(response.content))


def test_only_a_peers_last_exchanges_are_kept(peer_store: AdvertisementStore) -> None:
    # given
    peer, other = Peer.objects.create(url="http://a.example.org"), Peer.objects.create(url="http://b.example.org")
    history.record_exchange(other, "outbound", "ok", timezone.now(), 0.1, history.ExchangeTally())

    # when
    for index in range(history.PEER_EXCHANGE_HISTORY + 5):
        history.record_exchange(peer, "outbound", "ok", timezone.now(), float(index), history.ExchangeTally())

    # then: the newest twenty of this peer, the other peer's untouched
    kept = list(PeerExchange.objects.filter(peer=peer).values_list("duration_seconds", flat=True))
    assert kept == [float(index) for index in range(5, history.PEER_EXCHANGE_HISTORY + 5)]
    assert PeerExchange.objects.filter(peer=other).count() == 1


def test_forgetting_a_peer_drops_its_exchanges(peer_store: AdvertisementStore) -> None:
    # given
    peer = Peer.objects.create(url="http://a.example.org")
    history.record_exchange(peer, "outbound", "unreachable", timezone.now(), 0.1, history.ExchangeTally(error="x"))

    # when
    peer_actions.forget(peer)

    # then
    assert not PeerExchange.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_an_exchange_of_a_peer_forgotten_meanwhile_is_not_recorded(peer_store: AdvertisementStore) -> None:
    # given
    peer = Peer.objects.create(url="http://a.example.org")
    Peer.objects.filter(pk=peer.pk).delete()

    # when
    history.record_exchange(peer, "outbound", "ok", timezone.now(), 0.1, history.ExchangeTally())

    # then
    assert not PeerExchange.objects.exists()


def test_the_peer_list_shows_each_peers_last_exchanges_oldest_first(
    peer_store: AdvertisementStore, api: APIClient
) -> None:
    # given
    peer = Peer.objects.create(url="http://a.example.org", name="a")
    start = timezone.now() - timedelta(minutes=5)
    tallies = [
        history.ExchangeTally(bytes_sent=100, bytes_received=2_000, advertisements=3),
        history.ExchangeTally(error="HTTP 503 Service Unavailable"),
    ]
    history.record_exchange(peer, "outbound", "ok", start, 0.05, tallies[0])
    history.record_exchange(peer, "inbound", "rejected", start + timedelta(minutes=1), 0.01, tallies[1])

    # when
    listed = api.get("/api/peers/").json()

    # then
    exchanges = listed[0]["recentExchanges"]
    assert [(row["direction"], row["outcome"]) for row in exchanges] == [("outbound", "ok"), ("inbound", "rejected")]
    assert exchanges[0] == {
        "at": start.isoformat(),
        "direction": "outbound",
        "outcome": "ok",
        "durationSeconds": 0.05,
        "bytesSent": 100,
        "bytesReceived": 2_000,
        "advertisements": 3,
        "digestOnly": False,
        "error": "",
    }
    assert exchanges[1]["error"] == "HTTP 503 Service Unavailable"


def test_the_peer_list_reads_every_peers_exchanges_in_one_query(peer_store: AdvertisementStore, api: APIClient) -> None:
    # given
    def listing_queries() -> int:
        with CaptureQueriesContext(connection) as queries:
            assert api.get("/api/peers/").status_code == 200
        return len(queries)

    peers = [Peer.objects.create(url=f"http://{name}.example.org") for name in "abcd"]
    history.record_exchange(peers[0], "outbound", "ok", timezone.now(), 0.1, history.ExchangeTally())
    one_peer_with_exchanges = listing_queries()

    # when
    for peer in peers[1:]:
        for _ in range(3):
            history.record_exchange(peer, "outbound", "ok", timezone.now(), 0.1, history.ExchangeTally())

    # then
    assert listing_queries() == one_peer_with_exchanges
    assert all(len(row["recentExchanges"]) in (1, 3) for row in orjson.loads(api.get("/api/peers/").content))
