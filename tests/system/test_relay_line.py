"""Relayed gossip across a line of four real nodes, A-B-C-D (ARCHITECTURE §4, "Remote advertisement").

Each node is a gunicorn process of its own with its own database; each has only the next node as
its seed and `GOSSIP_DISCOVERY=false`, so A and D never call each other: whatever D knows of A came
through B and C as A's signed set, relayed unchanged. A "round" here is every node running one
gossip round, in the order D, C, B, A (the order in which a set from A moves slowest).
"""

from __future__ import annotations

import base64
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peers.gossip.origins import digest
from peers.gossip.records import DOMAIN
from tests.nodes import Node, wait_for
from tests.peers.fake_peers import FakeNode
from tests.plugin import SESSION_REDIS

TTL = 30.0  # ADVERTISEMENT_TTL of every node: an origin's set lapses this long after it was issued


class Line:
    """Four nodes in a line, each holding its own public registers (advertised again every round, as
    the Register Service's full syncs do, so that none lapses while the test runs)."""

    def __init__(self) -> None:
        self.nodes: dict[str, Node] = {}
        self.ads: dict[str, list[dict[str, Any]]] = {}
        settings = {
            "GOSSIP_DISCOVERY": "false",
            "ADVERTISEMENT_TTL": str(TTL),
            "GOSSIP_INTERVAL": "5",
            "RECONCILE_INTERVAL": "5",
            "GOSSIP_RATE_PER_ADDRESS": "100000",
            "GOSSIP_RATE_PER_PEER": "100000",
        }
        seed: Node | None = None
        for name in "dcba":  # each seeded with the next one along the line
            extra = {"PEER_SEEDS": seed.url} if seed is not None else {}
            node = Node(f"line-{name}", SESSION_REDIS, **settings, **extra)
            node.start_web()
            self.nodes[name], self.ads[name], seed = node, [ad(f"{name}-register")], node
            node.advertise(self.ads[name])

    def __getitem__(self, name: str) -> Node:
        return self.nodes[name]

    def all(self) -> list[Node]:
        return list(self.nodes.values())

    def round(self, skip: str = "") -> None:
        for name in "dcba":
            if name == skip:
                continue
            node = self.nodes[name]
            if self.ads[name]:
                node.advertise(self.ads[name])
            node.gossip_round()

    def rows(self, name: str) -> dict[str, dict[str, Any]]:
        return {row["registerId"]: row for row in self.nodes[name].available()}

    def stop(self) -> None:
        for node in self.nodes.values():
            node.stop_all()


def ad(name: str) -> dict[str, Any]:
    return {"registerId": uuid.uuid4().hex, "isPublic": True, "name": name, "latestVersion": 1}


def refusals(node: Node) -> dict[str, float]:
    """`sorcha_gossip_sets_refused` by reason, from the node's /metrics."""
    text = node.api("GET", "/metrics").text
    pattern = r'^sorcha_gossip_sets_refused_total\{reason="([a-z_]+)"\} ([0-9.e+]+)$'
    return {reason: float(value) for reason, value in re.findall(pattern, text, re.MULTILINE)}


@pytest.fixture(scope="module")
def line() -> Iterator[Line]:
    network = Line()
    yield network
    network.stop()


def converged(line: Line) -> bool:
    line.round()
    a_id, d_id = line.ads["a"][0]["registerId"], line.ads["d"][0]["registerId"]
    return a_id in line.rows("d") and d_id in line.rows("a")


def test_a_register_crosses_the_line_both_ways_through_relays(line: Line) -> None:
    wait_for(lambda: converged(line), line.all(), timeout=90, message="A's and D's registers never crossed")

    on_d = line.rows("d")[line.ads["a"][0]["registerId"]]
    on_a = line.rows("a")[line.ads["d"][0]["registerId"]]
    assert on_d["peerCount"] >= 1 and on_d["directPeerCount"] == 0 and not on_d["isLocal"]
    assert on_a["peerCount"] >= 1 and on_a["directPeerCount"] == 0
    on_c = line.rows("c")[line.ads["d"][0]["registerId"]]
    assert on_c["directPeerCount"] == 1  # C exchanges with D itself
    # With discovery off, D never called A nor A called D, though both heard of each other's URL.
    assert all(peer["url"] != line["a"].url for peer in line["d"].peers())
    assert all(peer["url"] != line["d"].url for peer in line["a"].peers())


def test_a_withdrawn_register_leaves_d_within_two_rounds_of_as_next_set(line: Line) -> None:
    wait_for(lambda: converged(line), line.all(), timeout=90, message="the line never converged")
    withdrawn = ad("a-withdrawn")
    line.ads["a"].append(withdrawn)
    line["a"].advertise([withdrawn])
    wait_for(
        lambda: line.round() or withdrawn["registerId"] in line.rows("d"),
        line.all(),
        timeout=60,
        message="A's new register never reached D",
    )

    line.ads["a"].remove(withdrawn)
    line["a"].api("DELETE", f"/api/registers/{withdrawn['registerId']}/advertise").raise_for_status()
    line["a"].gossip_round()  # A's next set: published now, without the register

    for _ in range(2):
        if withdrawn["registerId"] not in line.rows("d"):
            break
        line.round()
    assert withdrawn["registerId"] not in line.rows("d")
    assert line.ads["a"][0]["registerId"] in line.rows("d")  # A's other register stays


def test_a_hostile_relay_cannot_alter_replay_or_resign_as_set(line: Line) -> None:
    wait_for(lambda: converged(line), line.all(), timeout=90, message="the line never converged")
    hostile = FakeNode(name="hostile-relay")
    a_id = _origin_id(line, "a")
    held = _sets_held_by(line["b"], hostile)
    a_set = held[a_id]
    older = dict(a_set)  # the set as held now; A then publishes a newer one, and this one is the replay
    line.ads["a"].append(ad("a-newer"))
    line["a"].advertise(line.ads["a"][-1:])
    wait_for(
        lambda: line.round() or line.ads["a"][-1]["registerId"] in line.rows("d"),
        line.all(),
        timeout=60,
        message="A's newer set never reached D",
    )
    body = base64.b64decode(older["set"])
    fields = orjson.loads(body)
    altered = orjson.dumps({**fields, "advertisements": [{**fields["advertisements"][0], "name": "hijacked"}]})
    own_key = Ed25519PrivateKey.generate()
    own_public = own_key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw).hex()
    resigned = orjson.dumps({**fields, "publicKey": own_public})  # A's originId kept, the relay's own key
    attempts = [
        {"set": base64.b64encode(altered).decode(), "signature": older["signature"]},
        older,
        {"set": base64.b64encode(resigned).decode(), "signature": own_key.sign(DOMAIN + resigned).hex()},
    ]
    for name in "cd":
        node = line[name]
        before_rows, before = line.rows(name), refusals(node)
        for attempt in attempts:
            body, signature = hostile.relay_message({"originsDigest": digest({}), "records": [attempt]})
            assert hostile.post_to(node.url, body, signature).status_code == 200
        after = refusals(node)
        assert after.get("bad_signature", 0) - before.get("bad_signature", 0) == 2, (name, before, after)
        assert after.get("replayed", 0) - before.get("replayed", 0) == 1, (name, before, after)
        assert line.rows(name) == _without_moments(before_rows, line.rows(name))


@pytest.fixture
def own_line() -> Iterator[Line]:
    """A line of its own, for a test that stops one of its nodes."""
    network = Line()
    yield network
    network.stop()


def test_with_a_stopped_its_registers_leave_d_within_one_ttl_though_b_and_c_relay(own_line: Line) -> None:
    line = own_line
    wait_for(lambda: converged(line), line.all(), timeout=90, message="the line never converged")
    a_register = line.ads["a"][0]["registerId"]
    line["a"].stop_all()
    stopped = time.monotonic()

    def gone() -> bool:
        line.round(skip="a")
        return a_register not in line.rows("d")

    wait_for(gone, [line[n] for n in "dcb"], timeout=TTL + 30, message="A's register outlived its set on D")
    assert time.monotonic() - stopped <= TTL + 5  # one TTL (its last set was issued at the latest at the stop)
    assert line.ads["d"][0]["registerId"] in line.rows("b")  # B and C kept relaying the others meanwhile


def _origin_id(line: Line, name: str) -> str:
    peers = line["b"].peers()
    return next(peer["peerId"] for peer in peers if peer["url"] == line[name].url)


def _sets_held_by(node: Node, relay: FakeNode) -> dict[str, dict[str, str]]:
    """Every set `node` holds, asked for the way a relay asks: a Syn holding nothing, then an Ack2."""
    body, signature = relay.relay_message({"originsDigest": digest({})})
    ack = relay.post_to(node.url, body, signature)
    assert ack.status_code == 200, ack.text
    wants = [[origin, 0] for origin, _ in ack.json()["originVersions"]]  # all of them: it holds none
    body, signature = relay.relay_message({"originsDigest": digest({}), "originVersions": wants})
    done = relay.post_to(node.url, body, signature)
    assert done.status_code == 200, done.text
    held = {}
    for record in done.json().get("records", []):
        held[orjson.loads(base64.b64decode(record["set"]))["originId"]] = record
    return held


def _without_moments(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    """`before`, with each row's lastSeen and verified as they are now (time moves on; nothing else may)."""
    return {
        rid: {**row, "lastSeen": after.get(rid, row)["lastSeen"], "verified": after.get(rid, row)["verified"]}
        for rid, row in before.items()
    }
