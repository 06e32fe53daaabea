"""The room and the rates a node takes relayed sets within (ARCHITECTURE §4, "Remote advertisement"):
at most `max_origins` origins, those whose URL this node verified kept before relayed-only ones; a
rate of sets per sender and of sequence bumps per origin, in fixed windows.

Pure code only (`peers.gossip.origins`): a `MemoryTable`, `MemoryRates` on a virtual clock.
"""

from __future__ import annotations

import dataclasses

from peers.gossip.origins import MemoryRates, MemoryTable
from tests.peers.origin_sets import (
    LIMITS,
    NOW_MS,
    TTL_MS,
    WINDOW_MS,
    Origin,
    announce_seed,  # noqa: F401  (autouse: imported, it applies to this module)
    fresh_table,
    held_bytes,
    take,
)

CAP = dataclasses.replace(LIMITS, max_origins=3)
A = Origin("a")


def filled(verified: list[bool]) -> tuple[MemoryTable, list[Origin]]:
    """A table at its cap: one origin per flag, held verified or relayed-only, each expiring later."""
    table = fresh_table()
    held = [Origin(f"held-{index}") for index in range(len(verified))]
    for index, (origin, ok) in enumerate(zip(held, verified, strict=True)):
        signed = origin.publish(issued_at_ms=NOW_MS - TTL_MS // 2 + index * 1_000)
        assert take(signed, table, limits=CAP, verified_url=ok).accepted
    return table, held


# --- room -----------------------------------------------------------------------------------------


def test_a_new_relayed_only_origin_is_refused_when_the_origins_held_are_at_the_cap() -> None:
    table, _ = filled([False, False, False])
    before = held_bytes(table)

    outcome = take(A.publish(), table, limits=CAP)

    assert outcome.reason == "origins_cap"
    assert "records[].set.originId" in outcome.detail
    assert held_bytes(table) == before


def test_a_new_verified_origin_evicts_a_relayed_only_one_at_the_cap() -> None:
    table, held = filled([True, False, False])

    outcome = take(A.publish(), table, limits=CAP, verified_url=True)

    assert outcome.accepted
    assert outcome.evicted == held[1].origin_id  # the relayed-only origin whose set expires first
    assert set(table.sets) == {held[0].origin_id, held[2].origin_id, A.origin_id}
    assert table.sets[A.origin_id][1] is True


def test_a_verified_origin_is_refused_when_every_origin_held_is_verified() -> None:
    table, _ = filled([True, True, True])
    before = held_bytes(table)

    outcome = take(A.publish(), table, limits=CAP, verified_url=True)

    assert (outcome.reason, outcome.evicted) == ("origins_cap", None)
    assert held_bytes(table) == before


def test_the_cap_never_refuses_a_newer_set_of_an_origin_held() -> None:
    table, held = filled([False, False, False])

    outcome = take(held[0].publish(2), table, limits=CAP)

    assert (outcome.accepted, outcome.evicted) == (True, None)
    assert table.sets[held[0].origin_id][0].sequence == 2
    assert len(table.sets) == 3


def test_an_expired_set_takes_no_room() -> None:
    table, _ = filled([False, False, False])
    later = NOW_MS + TTL_MS // 2 + 500  # the first set held has expired then, the others not

    assert table.count(later) == 2
    assert take(A.publish(issued_at_ms=later), table, now_ms=later, limits=CAP).accepted


def test_a_verified_origin_never_takes_the_unexpired_origins_held_over_the_cap() -> None:
    # Two verified origins fill the cap once the relayed-only one held has expired: dropping that
    # expired set makes no room among the unexpired ones.
    cap = dataclasses.replace(LIMITS, max_origins=2)
    table = fresh_table()
    relayed, first, second = Origin("relayed"), Origin("verified-1"), Origin("verified-2")
    assert take(relayed.publish(issued_at_ms=NOW_MS - TTL_MS + 1_000), table, limits=cap).accepted
    assert take(first.publish(), table, limits=cap, verified_url=True).accepted
    later = NOW_MS + 2_000  # the relayed-only set has expired
    assert take(second.publish(issued_at_ms=later), table, now_ms=later, limits=cap, verified_url=True).accepted
    assert table.count(later) == 2

    take(A.publish(issued_at_ms=later), table, now_ms=later, limits=cap, verified_url=True)

    assert table.count(later) <= cap.max_origins


# --- rates ----------------------------------------------------------------------------------------


def test_a_sender_over_its_rate_is_refused_until_the_next_window() -> None:
    limits = dataclasses.replace(LIMITS, sets_per_sender=2)
    rates = MemoryRates(WINDOW_MS)
    table = fresh_table()
    origins = [Origin(f"o{index}") for index in range(4)]

    outcomes = [take(origin.publish(), table, limits=limits, rates=rates) for origin in origins[:3]]

    assert [outcome.reason for outcome in outcomes] == [None, None, "sender_rate"]
    assert origins[2].origin_id not in table.sets
    assert "relay-1" in outcomes[2].detail
    # another sender has a rate of its own
    assert take(origins[2].publish(), table, limits=limits, rates=rates, sender="relay-2").accepted
    # the next window lets the first sender through again
    next_window = NOW_MS + WINDOW_MS
    assert take(origins[3].publish(), table, now_ms=next_window, limits=limits, rates=rates).accepted


def test_an_origin_bumping_its_sequence_too_often_is_refused_until_the_next_window() -> None:
    limits = dataclasses.replace(LIMITS, bumps_per_origin=2)
    rates = MemoryRates(WINDOW_MS)
    table = fresh_table()

    outcomes = [
        take(A.publish(sequence), table, limits=limits, rates=rates, sender=f"relay-{sequence}")
        for sequence in (1, 2, 3)
    ]

    assert [outcome.reason for outcome in outcomes] == [None, None, "origin_rate"]
    assert "records[].set.sequence" in outcomes[2].detail
    assert table.sets[A.origin_id][0].sequence == 2
    next_window = NOW_MS + WINDOW_MS
    assert take(A.publish(3), table, now_ms=next_window, limits=limits, rates=rates).accepted
    assert table.sets[A.origin_id][0].sequence == 3


def test_the_same_set_heard_from_many_relays_bumps_its_origin_once() -> None:
    limits = dataclasses.replace(LIMITS, bumps_per_origin=2)
    rates = MemoryRates(WINDOW_MS)
    table = fresh_table()

    first = [take(A.publish(1), table, limits=limits, rates=rates, sender=f"relay-{n}") for n in range(5)]

    assert [outcome.reason for outcome in first] == [None] + ["unchanged"] * 4
    assert take(A.publish(2), table, limits=limits, rates=rates).accepted


def test_a_refused_set_uses_none_of_its_senders_rate() -> None:
    limits = dataclasses.replace(LIMITS, sets_per_sender=1)
    rates = MemoryRates(WINDOW_MS)
    table = fresh_table()
    table.banned.add(Origin("banned").origin_id)

    assert take(Origin("banned").publish(), table, limits=limits, rates=rates).reason == "banned"
    assert take(A.publish(issued_at_ms=NOW_MS - TTL_MS), table, limits=limits, rates=rates).reason == "expired"
    assert take(A.publish(), table, limits=limits, rates=rates).accepted
