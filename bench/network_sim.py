"""The simulated network of `bench/bench_network.py`: nodes that run the real relay code of
`peers.gossip` (records, origins, antientropy) against each other in memory, over a virtual clock.

A node is an `antientropy.Side`: a `MemoryTable`, `MemoryRates`, its Ed25519 key and its own set.
Two shortcuts keep a thousand nodes fast and change no figure, both sound because nothing expires
during a run. The table keeps its count, versions and offered sets as sets come and go, and a node
keeps its versions and offered sets until its table changes. An exchange between two nodes that
hold the same (origin, sequence) map, with nothing pushed, is not run: their digests are equal, so
the real steps would send one Syn and one Ack of a digest each and stop, and exactly those bytes
are counted. BENCH_NETWORK_FULL=1 runs every exchange through the steps, to check that the figures
are the same.
"""

from __future__ import annotations

import os
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peers.gossip import antientropy
from peers.gossip.origins import Limits, MemoryRates, MemoryTable, Outcome, accept, digest
from peers.gossip.records import OriginSet, RecordRefused, SignedSet, origin_id_for, parse, publish

FANOUT = 3
DEGREE = 8
BUDGET_BYTES = 256 * 1024
ROUND_MS = 1_000
TTL_MS = 10**9
START_MS = 1_767_225_600_000  # 2026-01-01, the virtual clock's first reading
LIMITS = Limits(
    ttl_ms=TTL_MS,
    skew_ms=300_000,
    max_origins=100_000,
    sets_per_sender=100_000,
    bumps_per_origin=100,
    window_ms=60_000,
    budget_bytes=BUDGET_BYTES,
)
FULL = os.environ.get("BENCH_NETWORK_FULL") == "1"


def envelope_bytes() -> int:
    """The bytes of a message around its relay fields: the signed message's identity fields, and the
    signature header's value."""
    message = {
        "peerId": "0" * 32,
        "publicKey": "0" * 64,
        "url": "https://sorcha-node-0001.example.org",
        "name": "node-0001",
        "sequence": START_MS * 1000,
        "sentAt": "2026-01-01T00:00:00.000000+00:00",
    }  # an empty peers list is left out, as `messages.build_relay_message` does
    return len(orjson.dumps(message)) + 128


ENVELOPE = envelope_bytes()
# An exchange of two equal digests: one Syn and one Ack, a digest each.
EQUAL_EXCHANGE = 2 * (len(orjson.dumps({"originsDigest": digest({})})) + ENVELOPE)


@dataclass
class Clock:
    now_ms: int = START_MS


@dataclass
class Table(MemoryTable):
    """A MemoryTable that keeps its answers as sets come and go, so that while no set can have
    expired, counting and listing cost no walk over every set (the MemoryTable's do, and `accept`
    counts for every new origin): the same answers, sooner."""

    earliest_expiry_ms: int = 2**63
    offered_by_origin: dict[str, tuple[str, int, SignedSet]] = field(default_factory=dict)

    def put(self, record: OriginSet, verified_url: bool) -> None:
        super().put(record, verified_url)
        self.offered_by_origin[record.origin_id] = (record.origin_id, record.sequence, record.signed)
        self.earliest_expiry_ms = min(self.earliest_expiry_ms, record.expires_at_ms)

    def drop(self, origin_id: str) -> None:
        super().drop(origin_id)
        self.offered_by_origin.pop(origin_id, None)

    def count(self, now_ms: int) -> int:
        return len(self.sets) if now_ms < self.earliest_expiry_ms else super().count(now_ms)

    def versions(self, now_ms: int) -> dict[str, int]:
        if now_ms < self.earliest_expiry_ms:
            return {origin: sequence for origin, sequence, _ in self.offered_by_origin.values()}
        return super().versions(now_ms)

    def offered(self, now_ms: int) -> list[tuple[str, int, SignedSet]]:
        return list(self.offered_by_origin.values()) if now_ms < self.earliest_expiry_ms else super().offered(now_ms)


@dataclass
class Node:
    """One node as the exchange steps see it (an `antientropy.Side`); its versions and offered sets
    are kept until its table changes (the steps only read them)."""

    origin_id: str
    private_key_hex: str
    clock: Clock
    table: Table
    rates: MemoryRates
    budget_bytes: int = BUDGET_BYTES
    own: SignedSet | None = None
    cached_versions: dict[str, int] | None = None
    cached_offered: list[tuple[str, int, SignedSet]] | None = None
    cached_digest: str | None = None
    last_round_digest: str | None = None  # the digest of its map when its previous round began
    advertisements: list[dict[str, Any]] = field(default_factory=list)

    def publish(self, advertisements: list[dict[str, Any]]) -> SignedSet:
        self.advertisements = advertisements
        self.own = publish(
            self.private_key_hex,
            url=f"https://{self.origin_id[:12]}.example.org",
            name=f"node-{self.origin_id[:8]}",
            sequence=self.clock.now_ms,
            issued_at_ms=self.clock.now_ms,
            ttl_ms=TTL_MS,
            advertisements=advertisements,
        )
        self.table.put(parse(self.own), verified_url=True)
        self.changed()
        return self.own

    def changed(self) -> None:
        self.cached_versions = self.cached_offered = self.cached_digest = None

    def digest(self) -> str:
        if self.cached_digest is None:
            self.cached_digest = antientropy.digest(self.versions())
        return self.cached_digest

    def fanout(self) -> int:
        """The peers of this round, as `peers.gossip.rounds` picks them (antientropy.round_fanout)."""
        now = self.digest()
        fanout = antientropy.round_fanout(FANOUT, now, self.last_round_digest)
        self.last_round_digest = now
        return fanout

    def versions(self) -> dict[str, int]:
        if self.cached_versions is None:
            self.cached_versions = self.table.versions(self.clock.now_ms)
        return self.cached_versions

    def offered(self) -> list[tuple[str, int, SignedSet]]:
        if self.cached_offered is None:
            self.cached_offered = self.table.offered(self.clock.now_ms)
        return self.cached_offered

    def take(self, sets: Sequence[SignedSet], sender: str) -> list[Outcome]:
        outcomes = [
            accept(
                signed,
                self.table,
                self.clock.now_ms,
                LIMITS,
                sender=sender,
                rates=self.rates,
                verified_url=origin_of(signed) == sender,
            )
            for signed in sets
        ]
        if any(outcome.accepted for outcome in outcomes):
            self.changed()
        return outcomes


def origin_of(signed: SignedSet) -> str | None:
    try:
        return parse(signed).origin_id
    except RecordRefused:
        return None


def advertisement(rng: random.Random, index: int) -> dict[str, Any]:
    return {"registerId": rng.randbytes(16).hex(), "name": f"register-{index}", "latestVersion": index}


def random_regular(n: int, degree: int, rng: random.Random) -> list[list[int]]:
    """A simple, connected random `degree`-regular graph on n nodes: stubs paired at random, unsuitable
    pairs paired again among themselves, the whole drawn again when it gets stuck or is disconnected."""
    while True:
        edges = pair_stubs(n, degree, rng)
        if edges is None:
            continue
        neighbours: list[list[int]] = [[] for _ in range(n)]
        for a, b in edges:
            neighbours[a].append(b)
            neighbours[b].append(a)
        if connected(neighbours):
            return neighbours


def pair_stubs(n: int, degree: int, rng: random.Random) -> set[tuple[int, int]] | None:
    edges: set[tuple[int, int]] = set()
    stubs = [node for node in range(n) for _ in range(degree)]
    while stubs:
        rng.shuffle(stubs)
        left: list[int] = []
        for a, b in zip(stubs[::2], stubs[1::2], strict=True):
            pair = (min(a, b), max(a, b))
            if a != b and pair not in edges:
                edges.add(pair)
            else:
                left += [a, b]
        if left and not any(
            a != b and (min(a, b), max(a, b)) not in edges for i, a in enumerate(left) for b in left[i + 1 :]
        ):
            return None
        stubs = left
    return edges


def connected(neighbours: list[list[int]]) -> bool:
    seen, frontier = {0}, [0]
    while frontier:
        node = frontier.pop()
        for peer in neighbours[node]:
            if peer not in seen:
                seen.add(peer)
                frontier.append(peer)
    return len(seen) == len(neighbours)


def graph(topology: str, n: int, rng: random.Random) -> list[list[int]]:
    if topology == "8-regular":
        return random_regular(n, DEGREE, rng)
    if topology == "ring":
        return [[(node - 1) % n, (node + 1) % n] for node in range(n)]
    return [[peer for peer in (node - 1, node + 1) if 0 <= peer < n] for node in range(n)]


def size(step: dict[str, Any]) -> int:
    return len(orjson.dumps(step)) + ENVELOPE


def exchange(initiator: Node, peer: Node, pushed: Sequence[SignedSet]) -> int:
    """One exchange through the real steps; the bytes it put on the wire."""
    if not FULL and not pushed and initiator.versions() == peer.versions():
        return EQUAL_EXCHANGE
    syn = antientropy.syn(initiator, pushed)
    ack, _ = antientropy.ack(peer, syn, initiator.origin_id)
    spent = size(syn) + size(ack)
    ack2 = antientropy.ack2(initiator, ack)
    if ack2 is None:
        return spent
    done, _ = antientropy.done(peer, ack2, initiator.origin_id)
    antientropy.finish(initiator, done, peer.origin_id)
    return spent + size(ack2) + size(done)


def run_round(nodes: list[Node], neighbours: list[list[int]], rng: random.Random, pushing: int | None = None) -> int:
    """One round of every node, in a random order; the bytes it cost. `pushing`: the node whose own
    set changed, which pushes it in its Syns of this round."""
    order = list(range(len(nodes)))
    rng.shuffle(order)
    spent = 0
    for index in order:
        node = nodes[index]
        fanout = node.fanout()
        chosen = neighbours[index] if len(neighbours[index]) <= fanout else rng.sample(neighbours[index], fanout)
        pushed = [node.own] if index == pushing and node.own is not None else []
        for peer in chosen:
            spent += exchange(node, nodes[peer], pushed)
    nodes[0].clock.now_ms += ROUND_MS
    return spent


def build(n: int, rng: random.Random, clock: Clock) -> list[Node]:
    nodes = []
    for _ in range(n):
        key = Ed25519PrivateKey.from_private_bytes(rng.randbytes(32))
        origin_id = origin_id_for(key.public_key().public_bytes_raw().hex())
        node = Node(origin_id, key.private_bytes_raw().hex(), clock, Table(origin_id), MemoryRates(LIMITS.window_ms))
        node.publish([advertisement(rng, 0)])
        nodes.append(node)
    return nodes


def until(
    nodes: list[Node],
    neighbours: list[list[int]],
    rng: random.Random,
    done: Callable[[Node], bool],
    pushing: int | None = None,
) -> tuple[int, int]:
    """Rounds until `done(node)` holds for every node, and the bytes they cost."""
    rounds = spent = 0
    while not all(done(node) for node in nodes):
        if rounds > 4 * len(nodes) + 50:
            raise RuntimeError(f"no convergence after {rounds} rounds")
        if nodes[0].clock.now_ms >= START_MS + TTL_MS:
            raise RuntimeError("sets would expire: the kept versions would no longer hold")
        spent += run_round(nodes, neighbours, rng, pushing if rounds == 0 else None)
        rounds += 1
    return rounds, spent


def measure_seed(topology: str, n: int, seed: str) -> dict[str, float]:
    rng = random.Random(seed)
    clock = Clock()
    neighbours = graph(topology, n, rng)
    nodes = build(n, rng, clock)
    cold_rounds, cold_bytes = until(nodes, neighbours, rng, lambda node: len(node.table.sets) == n)
    run_round(nodes, neighbours, rng)  # the round after the last news still fans out; the next is quiet
    steady = run_round(nodes, neighbours, rng)
    origin = rng.randrange(n)
    changing = nodes[origin]
    new = parse(changing.publish([*changing.advertisements, advertisement(rng, 1)]))
    change_rounds, change_bytes = until(
        nodes,
        neighbours,
        rng,
        lambda node: node.table.sets[new.origin_id][0].sequence == new.sequence,
        pushing=origin,
    )
    return {
        "rounds": cold_rounds,
        "cold_bytes": cold_bytes / n,
        "steady": steady / n,
        "change_rounds": change_rounds,
        "change_bytes": change_bytes / n,
    }
