"""Anti-entropy between relaying nodes (ARCHITECTURE §4, "Remote advertisement"): one digest of the
(origin, sequence) map first, then only the sets the other lacks, oldest first within a budget.

Pure code only (`peers.gossip.origins`, `peers.gossip.antientropy`): two nodes in memory, each a
`MemoryTable` with `MemoryRates` and a fixed clock, passing the steps' dicts to each other.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson
import pytest

from peers.gossip import antientropy
from peers.gossip.origins import MemoryRates, MemoryTable, Outcome, accept, digest, to_send, wire_size
from peers.gossip.records import SignedSet, parse
from tests.peers.origin_sets import (
    LIMITS,
    NOW_MS,
    REPLAY,
    SEED,
    WINDOW_MS,
    Origin,
    advertisement,
    announce_seed,  # noqa: F401  (autouse: imported, it applies to this module)
)

# --- the digest -----------------------------------------------------------------------------------

VERSIONS = {Origin(f"o{index}").origin_id: index + 1 for index in range(12)}


def test_equal_maps_have_equal_digests_whatever_the_order_they_were_built_in() -> None:
    rng = random.Random(f"{SEED}:digest")
    shuffled = list(VERSIONS.items())
    rng.shuffle(shuffled)

    assert digest(dict(shuffled)) == digest(VERSIONS), REPLAY
    assert digest(dict(reversed(VERSIONS.items()))) == digest(VERSIONS)


@pytest.mark.parametrize("index", range(len(VERSIONS)))
def test_any_sequence_differing_changes_the_digest(index: int) -> None:
    origin = list(VERSIONS)[index]

    assert digest({**VERSIONS, origin: VERSIONS[origin] + 1}) != digest(VERSIONS)


def test_an_origin_more_or_less_changes_the_digest() -> None:
    fewer = dict(list(VERSIONS.items())[1:])

    assert digest(fewer) != digest(VERSIONS)
    assert digest({}) != digest({Origin("x").origin_id: 1})


# --- what is sent ---------------------------------------------------------------------------------


def origins_of(sets: Sequence[SignedSet]) -> list[str]:
    return [parse(signed).origin_id for signed in sets]


def offer(*held: tuple[Origin, int]) -> list[tuple[str, int, SignedSet]]:
    return [(origin.origin_id, sequence, origin.publish(sequence)) for origin, sequence in held]


P, Q, R, S = (Origin(label) for label in "pqrs")


def test_only_the_sets_the_other_lacks_or_holds_older_are_sent() -> None:
    mine = offer((P, 3), (Q, 2), (R, 1), (S, 5))
    theirs = {P.origin_id: 3, Q.origin_id: 5, S.origin_id: 4}  # P equal, Q newer there, R missing, S older

    assert sorted(origins_of(to_send(mine, theirs, LIMITS.budget_bytes))) == sorted([R.origin_id, S.origin_id])


def test_sets_go_oldest_first_by_what_the_other_holds_missing_counting_as_nothing() -> None:
    mine = offer((P, 9), (Q, 9), (R, 9), (S, 9))
    theirs = {P.origin_id: 7, R.origin_id: 2, S.origin_id: 5}  # Q missing

    assert origins_of(to_send(mine, theirs, LIMITS.budget_bytes)) == [
        Q.origin_id,
        R.origin_id,
        S.origin_id,
        P.origin_id,
    ]


def test_sending_stops_at_the_budget() -> None:
    small, large = [advertisement("one")], [advertisement(str(n)) for n in range(40)]
    mine = [
        (P.origin_id, 3, P.publish(3, advertisements=small)),
        (Q.origin_id, 3, Q.publish(3, advertisements=large)),
        (R.origin_id, 3, R.publish(3, advertisements=small)),
    ]
    theirs = {Q.origin_id: 1, R.origin_id: 2}  # the order: P (missing), Q, R
    budget = wire_size(mine[0][2]) + wire_size(mine[2][2])  # R would fit after P, Q not: sending stops at Q

    sent = to_send(mine, theirs, budget)

    assert origins_of(sent) == [P.origin_id]


def test_the_sets_sent_fit_the_budget_in_their_real_wire_size() -> None:
    mine = offer(*((Origin(f"b{n}"), 1) for n in range(10)))
    budget = 5 * wire_size(mine[0][2])

    sent = to_send(mine, {}, budget)

    assert 1 < len(sent) < len(mine)
    assert sum(len(orjson.dumps(signed.wire())) for signed in sent) <= budget
    assert all(len(orjson.dumps(signed.wire())) <= wire_size(signed) for _, _, signed in mine)


def test_one_set_always_goes_even_over_the_budget() -> None:
    mine = offer((P, 1), (Q, 1))

    sent = to_send(mine, {Q.origin_id: 0, P.origin_id: 0}, budget_bytes=0)

    assert origins_of(sent) == [min(P.origin_id, Q.origin_id)]


def test_nothing_is_sent_when_the_other_holds_everything() -> None:
    assert to_send(offer((P, 2), (Q, 1)), {P.origin_id: 2, Q.origin_id: 3}, LIMITS.budget_bytes) == []


# --- one exchange between two nodes ---------------------------------------------------------------


@dataclass
class Side:
    """A relaying node in memory: its own set, the sets it holds, its rates and its clock."""

    origin: Origin
    sequence: int = 1
    budget_bytes: int = LIMITS.budget_bytes
    now_ms: int = NOW_MS
    table: MemoryTable = field(init=False)
    rates: MemoryRates = field(default_factory=lambda: MemoryRates(WINDOW_MS))

    def __post_init__(self) -> None:
        self.table = MemoryTable(own_id=self.origin.origin_id)

    @property
    def own(self) -> SignedSet:
        return self.origin.publish(self.sequence)

    def versions(self) -> dict[str, int]:
        return {**self.table.versions(self.now_ms), self.origin.origin_id: self.sequence}

    def offered(self) -> list[tuple[str, int, SignedSet]]:
        return [*self.table.offered(self.now_ms), (self.origin.origin_id, self.sequence, self.own)]

    def take(self, sets: Sequence[SignedSet], sender: str) -> list[Outcome]:
        return [accept(signed, self.table, self.now_ms, LIMITS, sender=sender, rates=self.rates) for signed in sets]

    def hold(self, origin: Origin, sequence: int) -> None:
        assert self.take([origin.publish(sequence)], "setup")[0].accepted


def reasons(outcomes: list[Outcome]) -> list[str | None]:
    return [outcome.reason for outcome in outcomes]


def sent_origins(step: dict[str, object]) -> set[str]:
    return set(origins_of(antientropy.records_of(step)))


def test_two_nodes_converge_in_one_exchange() -> None:
    a, b = Side(Origin("node-a")), Side(Origin("node-b"))
    x1, x2, y1, z = Origin("x1"), Origin("x2"), Origin("y1"), Origin("z")
    a.hold(x1, 1)
    a.hold(x2, 4)
    a.hold(z, 1)
    b.hold(y1, 2)
    b.hold(z, 3)

    syn = antientropy.syn(a)
    ack, at_b = antientropy.ack(b, syn, "node-a")
    ack2 = antientropy.ack2(a, ack)
    assert ack2 is not None
    done, at_b_later = antientropy.done(b, ack2, "node-a")
    at_a = antientropy.finish(a, done, "node-b")

    assert at_b == []
    assert sent_origins(ack2) == {x1.origin_id, x2.origin_id, a.origin.origin_id}  # not z: b holds it newer
    assert sent_origins(done) == {y1.origin_id, z.origin_id, b.origin.origin_id}
    assert reasons(at_b_later) == [None, None, None]
    assert reasons(at_a) == [None, None, None]
    expected = {
        a.origin.origin_id: 1,
        b.origin.origin_id: 1,
        x1.origin_id: 1,
        x2.origin_id: 4,
        y1.origin_id: 2,
        z.origin_id: 3,
    }
    assert a.versions() == b.versions() == expected
    assert a.table.sets[z.origin_id][0].signed == z.publish(3)  # the origin's very bytes, relayed


def test_the_second_message_names_only_the_origins_wanted_and_gets_only_those() -> None:
    a, b = Side(Origin("node-a")), Side(Origin("node-b"))
    same, newer_at_b, only_at_b, only_at_a = Origin("same"), Origin("newer"), Origin("only-b"), Origin("only-a")
    for side in (a, b):
        side.hold(same, 1)
    a.hold(newer_at_b, 1)
    b.hold(newer_at_b, 2)
    b.hold(only_at_b, 1)
    a.hold(only_at_a, 1)

    ack, _ = antientropy.ack(b, antientropy.syn(a), "node-a")
    ack2 = antientropy.ack2(a, ack)
    assert ack2 is not None
    done, _ = antientropy.done(b, ack2, "node-a")

    wanted = dict(antientropy.versions_of(ack2))
    assert wanted == {newer_at_b.origin_id: 1, only_at_b.origin_id: 0, b.origin.origin_id: 0}
    assert sent_origins(done) == set(wanted)  # not `same`, nor anything a holds as new


def test_nodes_holding_the_same_sets_exchange_one_hash_each_way() -> None:
    a, b = Side(Origin("node-a")), Side(Origin("node-b"))
    a.hold(b.origin, 1)
    b.hold(a.origin, 1)
    for side in (a, b):
        side.hold(Origin("x1"), 2)

    syn = antientropy.syn(a)
    ack, outcomes = antientropy.ack(b, syn, "node-a")

    assert set(syn) == set(ack) == {"originsDigest"}
    assert syn["originsDigest"] == ack["originsDigest"]
    assert outcomes == []
    assert antientropy.ack2(a, ack) is None


def test_a_set_pushed_in_the_syn_is_taken_by_the_peer() -> None:
    a, b = Side(Origin("node-a")), Side(Origin("node-b"))
    a.hold(b.origin, 1)
    b.hold(a.origin, 1)
    a.sequence = 2  # a's registers changed: its new set goes at once

    syn = antientropy.syn(a, pushed=[a.own])
    ack, outcomes = antientropy.ack(b, syn, "node-a")

    assert reasons(outcomes) == [None]
    assert b.table.sets[a.origin.origin_id][0].sequence == 2
    assert "originVersions" not in ack  # with it, both hold the same map: the exchange ends here
    assert antientropy.ack2(a, ack) is None


def test_a_malformed_item_in_a_step_is_refused_alone() -> None:
    a, b = Side(Origin("node-a")), Side(Origin("node-b"))
    syn = antientropy.syn(a, pushed=[a.own])
    syn["records"] = [{"set": "not base64!", "signature": "00" * 64}, *syn["records"]]

    _, outcomes = antientropy.ack(b, syn, "node-a")

    assert reasons(outcomes) == ["malformed", None]
    assert a.origin.origin_id in b.table.sets


def test_within_a_small_budget_repeated_exchanges_converge() -> None:
    a, b = Side(Origin("node-a")), Side(Origin("node-b"))
    for n in range(6):
        a.hold(Origin(f"x{n}"), 1)
        b.hold(Origin(f"y{n}"), 1)
    a.budget_bytes = b.budget_bytes = 2 * wire_size(a.own)

    exchanges = 0
    while a.versions() != b.versions():
        exchanges += 1
        assert exchanges <= 7, "no convergence within 7 exchanges"
        ack, _ = antientropy.ack(b, antientropy.syn(a), "node-a")
        ack2 = antientropy.ack2(a, ack)
        assert ack2 is not None and len(ack2["records"]) <= 2
        done, _ = antientropy.done(b, ack2, "node-a")
        assert len(done["records"]) <= 2
        antientropy.finish(a, done, "node-b")

    assert exchanges > 1
    assert len(a.versions()) == 14


def test_a_round_fans_out_while_the_node_has_news_and_checks_one_peer_otherwise() -> None:
    assert antientropy.round_fanout(3, "digest-now", "digest-before") == 3  # a set came in, or its own changed
    assert antientropy.round_fanout(3, "digest-now", None) == 3  # no round before (or the cache lost it)
    assert antientropy.round_fanout(3, "digest-now", "digest-now") == 1  # nothing new: one anti-entropy check
