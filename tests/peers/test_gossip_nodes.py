"""Gossip between real nodes (separate gunicorn processes) over real HTTP (user story 4)."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.nodes import Node, wait_for
from tests.plugin import SESSION_REDIS

StartNode = Callable[..., Node]


@pytest.fixture
def start_node() -> Iterator[StartNode]:
    nodes: list[Node] = []

    def start(name: str, seeds: list[Node] | None = None, **settings: Any) -> Node:
        if seeds:
            settings["PEER_SEEDS"] = ",".join(seed.url for seed in seeds)
        node = Node(name, SESSION_REDIS, **settings)
        nodes.append(node)
        node.start_web()
        return node

    yield start
    for node in nodes:
        node.stop_all()


def ad(name: str, **fields: Any) -> dict[str, Any]:
    return {"registerId": uuid.uuid4().hex, "isPublic": True, "name": name, "latestVersion": 1, **fields}


def test_a_peer_lists_another_nodes_public_registers_with_a_peer_count(start_node: StartNode) -> None:
    node_a = start_node("a")
    public = [ad("alpha"), ad("beta", isFullReplica=False)]
    node_a.advertise(public)
    node_b = start_node("b", seeds=[node_a])

    rows = wait_for(
        lambda: {row["registerId"]: row for row in node_b.available() if not row["isLocal"]},
        [node_a, node_b],
        message="B never listed A's registers",
    )

    assert set(rows) == {item["registerId"] for item in public}
    assert all(row["peerCount"] >= 1 for row in rows.values())
    assert sum(row["fullReplicaPeerCount"] for row in rows.values()) == 1
    assert node_a.available_ids(local=False) == set()  # B has no registers of its own


def test_a_private_register_never_reaches_the_other_node(start_node: StartNode) -> None:
    node_a = start_node("a")
    public, private = ad("open"), ad("closed")
    node_a.advertise([public, private])
    node_a.advertise([{**private, "isPublic": False}])
    node_b = start_node("b", seeds=[node_a])

    wait_for(lambda: node_b.available_ids() == {public["registerId"]}, [node_a, node_b], message="B's view")

    node_b.gossip_round()
    assert node_b.available_ids() == {public["registerId"]}


def test_adds_and_removes_on_one_node_reach_the_other_by_the_triggered_round(start_node: StartNode) -> None:
    node_a = start_node("a")
    node_b = start_node("b", seeds=[node_a])  # B's start-up round introduces it to A
    wait_for(lambda: any(peer["peerId"] for peer in node_a.peers()), [node_a, node_b], message="A never met B")
    created = ad("fresh")

    node_a.advertise([created])  # no round is called by the test: the change triggers one
    wait_for(lambda: created["registerId"] in node_b.available_ids(), [node_a, node_b], message="add never arrived")

    node_a.api("DELETE", f"/api/registers/{created['registerId']}/advertise").raise_for_status()
    wait_for(lambda: created["registerId"] not in node_b.available_ids(), [node_a, node_b], message="removal lost")


def test_a_node_that_only_knows_b_discovers_a_through_b(start_node: StartNode) -> None:
    node_a = start_node("a")
    from_a = ad("from-a")
    node_a.advertise([from_a])
    node_b = start_node("b", seeds=[node_a])
    wait_for(lambda: from_a["registerId"] in node_b.available_ids(), [node_a, node_b], message="B never heard A")
    node_c = start_node("c", seeds=[node_b])

    def c_knows_a() -> bool:
        node_c.gossip_round()
        return from_a["registerId"] in node_c.available_ids()

    wait_for(c_knows_a, [node_a, node_b, node_c], message="C never learnt A")
    peer_urls = {peer["url"] for peer in node_c.peers()}
    assert {node_a.url, node_b.url} <= peer_urls
    row = next(row for row in node_c.available() if row["registerId"] == from_a["registerId"])
    assert row["peerCount"] >= 1


def test_when_a_restarts_b_lists_its_registers_without_a_gap_and_a_reverifies_what_it_loaded(
    start_node: StartNode,
) -> None:
    node_a = start_node("a")
    public = [ad("steady-1"), ad("steady-2")]
    node_a.advertise(public)
    node_b = start_node("b", seeds=[node_a])
    from_b = ad("from-b")
    node_b.advertise([from_b])
    expected = {item["registerId"] for item in public}
    wait_for(lambda: node_b.available_ids(local=False) == expected, [node_a, node_b], message="B's first view")
    wait_for(lambda: from_b["registerId"] in node_a.available_ids(), [node_a, node_b], message="A's first view")

    gaps: list[set[str]] = []
    stop_polling = threading.Event()

    def poll_b() -> None:
        while not stop_polling.is_set():
            seen = node_b.available_ids(local=False)
            if seen != expected:
                gaps.append(seen)

    poller = threading.Thread(target=poll_b)
    poller.start()
    try:
        node_a.stop("web")
        node_a.processes["web"].start()
        wait_for(node_a.healthy, [node_a, node_b], message="A never came back")

        # A served what it had persisted at once; after its start-up exchange B's ads are verified again.
        def remote_on_a_verified() -> bool:
            rows = [row for row in node_a.available() if row["registerId"] == from_b["registerId"]]
            return bool(rows) and rows[0]["verified"]

        wait_for(remote_on_a_verified, [node_a, node_b], message="A never re-verified B's registers")
    finally:
        stop_polling.set()
        poller.join()

    assert gaps == []
    assert node_b.available_ids(local=False) == expected


def test_an_unreachable_peer_is_backed_off_its_ads_expire_and_return_when_it_is_back(start_node: StartNode) -> None:
    timing = {"ADVERTISEMENT_TTL": "3", "GOSSIP_INTERVAL": "1", "RECONCILE_INTERVAL": "1"}
    node_a = start_node("a", **timing)
    public = ad("partitioned")
    node_a.advertise([public])
    node_b = start_node("b", seeds=[node_a], **timing)
    wait_for(lambda: public["registerId"] in node_b.available_ids(), [node_a, node_b], message="B's first view")

    node_a.stop("web")
    node_b.gossip_round()
    peer_a = next(peer for peer in node_b.peers() if peer["url"] == node_a.url)
    assert peer_a["status"] == "backing_off"
    assert peer_a["consecutiveFailures"] >= 1
    assert node_b.gossip_round(respect_backoff=True)["peers"] == 0  # backed off, not retried at once
    wait_for(
        lambda: public["registerId"] not in node_b.available_ids(),
        [node_a, node_b],
        timeout=15,
        message="A's ads never expired on B",
    )

    node_a.processes["web"].start()  # A's local ad expired too; its source re-advertises it on start
    wait_for(node_a.healthy, [node_a, node_b], message="A never came back")
    node_a.advertise([public])
    wait_for(lambda: public["registerId"] in node_b.available_ids(), [node_a, node_b], message="never returned")
    peer_a = next(peer for peer in node_b.peers() if peer["url"] == node_a.url)
    assert peer_a["status"] == "healthy"
