"""Gossip over the wire, recorded: the bodies this process's outbound calls sent and read, and helpers
to fill both ends of an exchange (this process's store, a real node) and run one exchange."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from peers import outbound
from peers.gossip.exchange import exchange_with
from peers.models import Peer
from peers.store import AdvertisementInput
from tests.nodes import Node

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
    """One exchange with the node's row (its URL bound, or still the URL alone before first contact)."""
    peer = Peer.objects.filter(url=node.url).first() or Peer.objects.get_or_create(url=node.url)[0]
    return exchange_with(peer)
