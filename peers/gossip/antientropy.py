"""One anti-entropy exchange between two nodes, step by step (pure): Syn, Ack, Ack2, Done.

Scuttlebutt reconciliation in two round trips (Cassandra's Syn/Ack/Ack2 shape):

1. Syn (initiator → peer): the digest of its (origin, sequence) map, and its own set when that is
   new (pushed at once).
2. Ack (peer → initiator): the peer takes the pushed set, then answers its own digest; when the
   digests differ, its map too. When they are equal the exchange ends here: one hash each way.
3. Ack2 (initiator → peer): the sets the peer lacks or holds older (by the peer's map, within the
   budget), and the initiator's wants: the origins of the peer's map it lacks or holds older, each
   with the sequence it holds (0: none).
4. Done (peer → initiator): the peer takes those sets and answers the wanted ones.

Each step is a dict of the exchange message's relay fields (`originsDigest`, `originVersions`,
`records`); `peers.gossip.exchange` and `peers.gossip.inbound` send them inside the signed
message, and `bench/bench_network.py` passes them between nodes in memory.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

from peers.gossip.origins import Outcome, digest, to_send
from peers.gossip.records import RecordRefused, SignedSet

MAX_VERSIONS = 10_000


class Side(Protocol):
    """A node as one exchange sees it."""

    budget_bytes: int

    def versions(self) -> dict[str, int]: ...

    def offered(self) -> list[tuple[str, int, SignedSet]]: ...

    def take(self, sets: Sequence[SignedSet], sender: str) -> list[Outcome]: ...


def round_fanout(fanout: int, digest_now: str, digest_last_round: str | None) -> int:
    """The relaying peers one round exchanges with: `fanout` while the node has news (its map changed
    since its previous round began: a set of its own or one it took), one otherwise. Spreading news
    goes at the fan-out, as push gossip does; a network with nothing new costs one exchange per node
    and round (as memberlist pairs gossip with a periodic push-pull with one random node)."""
    return fanout if digest_now != digest_last_round else 1


def syn(side: Side, pushed: Sequence[SignedSet] = ()) -> dict[str, Any]:
    step: dict[str, Any] = {"originsDigest": digest(side.versions())}
    if pushed:
        step["records"] = [signed.wire() for signed in pushed]
    return step


def ack(side: Side, received: Mapping[str, Any], sender: str) -> tuple[dict[str, Any], list[Outcome]]:
    outcomes = side.take(records_of(received), sender)
    versions = side.versions()
    step: dict[str, Any] = {"originsDigest": digest(versions)}
    if step["originsDigest"] != received["originsDigest"]:
        step["originVersions"] = wire_versions(versions)
    return step, outcomes


def ack2(side: Side, received: Mapping[str, Any]) -> dict[str, Any] | None:
    """The Ack2 step, or None when the Ack's digest said both hold the same sets."""
    if "originVersions" not in received:
        return None
    theirs, mine = versions_of(received), side.versions()
    wants = {origin: mine.get(origin, 0) for origin, sequence in theirs.items() if sequence > mine.get(origin, 0)}
    step: dict[str, Any] = {"originsDigest": digest(mine), "originVersions": wire_versions(wants)}
    sets = to_send(side.offered(), theirs, side.budget_bytes)
    if sets:
        step["records"] = [signed.wire() for signed in sets]
    return step


def done(side: Side, received: Mapping[str, Any], sender: str) -> tuple[dict[str, Any], list[Outcome]]:
    outcomes = side.take(records_of(received), sender)
    wants = versions_of(received)
    step: dict[str, Any] = {"originsDigest": digest(side.versions())}
    offered = [held for held in side.offered() if held[0] in wants]  # only what the initiator asked for
    sets = to_send(offered, wants, side.budget_bytes)
    if sets:
        step["records"] = [signed.wire() for signed in sets]
    return step, outcomes


def finish(side: Side, received: Mapping[str, Any], sender: str) -> list[Outcome]:
    return side.take(records_of(received), sender)


def wire_versions(versions: Mapping[str, int]) -> list[list[Any]]:
    return [[origin, versions[origin]] for origin in sorted(versions)]


def versions_of(step: Mapping[str, Any]) -> dict[str, int]:
    return {origin: sequence for origin, sequence in step.get("originVersions") or ()}


def records_of(step: Mapping[str, Any]) -> list[SignedSet]:
    """The sets of a step; a malformed one is refused alone, counted by the taker as `malformed`."""
    sets: list[SignedSet] = []
    for item in step.get("records") or ():
        try:
            sets.append(SignedSet.from_wire(item))
        except RecordRefused:
            sets.append(SignedSet(b"", b""))  # fails `records.parse` as malformed, and is counted there
    return sets
