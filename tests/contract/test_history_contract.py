"""The history operations answer as documented when they hold data: runs, samples and exchanges of every kind.

The fuzzer meets an empty database; here each list holds every shape of entry (a success with
counts, failures without, an inbound exchange with a digest, an outbound one with an error), and
every answer is validated against the served schema.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
import requests
import schemathesis
from django.utils import timezone

from peers import history
from peers.models import Peer, PoolSample
from peers.store import AdvertisementStore
from registers import sync_history
from registers.peer_client import PeerServiceUnavailable
from tests.constants import SERVICE_TOKEN
from tests.contract.served import RESPONSE_CHECKS, served_schema

pytestmark = pytest.mark.django_db(transaction=True)

SCHEMA = schemathesis.openapi.from_dict(served_schema())
COUNTS = {"processed": 2, "added": 1, "updated": 0, "removed": 1, "unchanged": 1, "held": 0, "stale": 0}


def get_and_validate(base_url: str, path: str) -> list[Any]:
    response = requests.get(f"{base_url}{path}", headers={"Authorization": f"Bearer {SERVICE_TOKEN}"}, timeout=30)
    SCHEMA[path]["GET"].Case().validate_response(response, checks=RESPONSE_CHECKS)
    body: list[Any] = response.json()
    return body


def test_the_sync_history_with_every_outcome_answers_as_documented(
    live_server: Any, peer_store: AdvertisementStore
) -> None:
    # given
    now = timezone.now()
    sync_history.record_success("startup", now - timedelta(minutes=3), 1.25, 2, COUNTS)
    sync_history.record_failure("periodic", now - timedelta(minutes=2), 0.01, PeerServiceUnavailable("down"), True)
    sync_history.record_failure("manual", now - timedelta(minutes=1), 0.02, RuntimeError("boom"), False)

    # when / then
    runs = get_and_validate(live_server.url, "/api/registers/sync-history/")
    assert [run["outcome"] for run in runs] == ["success", "retrying", "failed"]


def test_the_pool_history_answers_as_documented(live_server: Any, peer_store: AdvertisementStore) -> None:
    # given
    PoolSample.objects.create(sampled_at=timezone.now() - timedelta(minutes=1), local=0, remote=12)

    # when / then
    assert len(get_and_validate(live_server.url, "/api/store/pool-history/")) == 1


def test_the_peer_list_with_exchanges_of_every_kind_answers_as_documented(
    live_server: Any, peer_store: AdvertisementStore
) -> None:
    # given
    peer = Peer.objects.create(url="http://harbour.example.org", peer_id="cd" * 16, name="harbour")
    now = timezone.now()
    tallies = {
        ("outbound", "ok"): history.ExchangeTally(bytes_sent=10, bytes_received=20, advertisements=2),
        ("inbound", "ok"): history.ExchangeTally(advertisements=2, digest_only=True),
        ("outbound", "unreachable"): history.ExchangeTally(error="connection refused"),
        ("outbound", "refused_address"): history.ExchangeTally(error="loopback address"),
        ("outbound", "rejected"): history.ExchangeTally(error="HTTP 403 Forbidden"),
        ("outbound", "reply_refused"): history.ExchangeTally(error="reply refused (409): replay"),
    }
    for (direction, outcome), tally in tallies.items():
        history.record_exchange(peer, direction, outcome, now, 0.1, tally)

    # when / then
    listed = get_and_validate(live_server.url, "/api/peers/")
    assert len(listed[0]["recentExchanges"]) == len(tallies)
