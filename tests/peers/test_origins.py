"""Signed per-origin sets and the rules a node takes them by (ARCHITECTURE §4, "Remote advertisement").

Pure code only (`peers.gossip.records`, `peers.gossip.origins`): a `MemoryTable`, `MemoryRates` and a
fixed clock; no database, no Redis. Room and rates: test_origins_limits.py; digests, what is sent
and the anti-entropy steps: test_origins_antientropy.py.
"""

from __future__ import annotations

import base64
import json
from typing import Any

import orjson
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from peers.gossip import records
from peers.gossip.origins import QUIET_REASONS
from peers.gossip.records import GossipAdvertisement, RecordRefused, SignedSet
from tests.peers.origin_sets import (
    NOW_MS,
    SKEW_MS,
    TTL_MS,
    Origin,
    advertisement,
    announce_seed,  # noqa: F401  (autouse: imported, it applies to this module)
    fresh_table,
    held_bytes,
    register_id,
    sign,
    take,
)

A = Origin("a")
HOSTILE = Origin("hostile")


def body_of(signed: SignedSet) -> dict[str, Any]:
    parsed: dict[str, Any] = orjson.loads(signed.body)
    return parsed


# --- a set as its origin publishes it -------------------------------------------------------------


def test_a_published_set_parses_back_with_every_field() -> None:
    ads = [advertisement("r1", description="first", latestVersion=7, latestDocketVersion=3, isFullReplica=False)]
    signed = A.publish(5, advertisements=ads, issued_at_ms=NOW_MS - 1_000, url="https://a.example:8443", name="A")

    record = records.parse(signed)

    assert record.origin_id == A.origin_id
    assert record.public_key == A.public_key
    assert record.url == "https://a.example:8443"
    assert record.name == "A"
    assert record.sequence == 5
    assert record.issued_at_ms == NOW_MS - 1_000
    assert record.expires_at_ms == NOW_MS - 1_000 + TTL_MS
    assert record.advertisements == (
        GossipAdvertisement(
            registerId=register_id("r1"),
            name="register r1",
            description="first",
            latestVersion=7,
            latestDocketVersion=3,
            isFullReplica=False,
        ),
    )
    assert record.signed == signed


def test_the_signature_covers_the_domain_prefix_and_exactly_the_body_bytes() -> None:
    signed = A.publish()

    Ed25519PublicKey.from_public_bytes(bytes.fromhex(A.public_key)).verify(
        signed.signature, records.DOMAIN + signed.body
    )
    assert records.parse(signed).signed.body == signed.body


def test_the_wire_round_trip_gives_the_identical_bytes() -> None:
    signed = A.publish(3, advertisements=[advertisement("r1"), advertisement("r2", description="é ✓")])

    travelled = SignedSet.from_wire(orjson.loads(orjson.dumps(signed.wire())))

    assert travelled.body == signed.body
    assert travelled.signature == signed.signature
    assert records.parse(travelled).signed.body == signed.body


def test_a_set_is_base64_of_its_body_on_the_wire() -> None:
    signed = A.publish()
    assert base64.b64decode(signed.wire()["set"]) == signed.body
    assert bytes.fromhex(signed.wire()["signature"]) == signed.signature


# --- what a relay cannot do -----------------------------------------------------------------------

TAMPERINGS = {
    "a register's name": lambda body: body["advertisements"][0].update(name="renamed"),
    "a register's version": lambda body: body["advertisements"][0].update(latestVersion=99),
    "a register added": lambda body: body["advertisements"].append(advertisement("planted")),
    "the sequence": lambda body: body.update(sequence=body["sequence"] + 1),
    "expiresAt": lambda body: body.update(expiresAt=body["expiresAt"] + 60_000),
    "issuedAt": lambda body: body.update(issuedAt=body["issuedAt"] - 1),
    "the url": lambda body: body.update(url="https://hostile.example"),
}


@pytest.mark.parametrize("tampering", TAMPERINGS, ids=list(TAMPERINGS))
def test_a_set_altered_after_signing_is_refused_and_nothing_changes(tampering: str) -> None:
    table = fresh_table()
    assert take(A.publish(1), table).accepted
    before = held_bytes(table)
    body = body_of(A.publish(2))
    TAMPERINGS[tampering](body)
    altered = SignedSet(orjson.dumps(body), A.publish(2).signature)
    assert altered.body != A.publish(2).body

    outcome = take(altered, table)

    assert (outcome.reason, outcome.record) == ("bad_signature", None)
    assert "records[].signature" in outcome.detail
    assert held_bytes(table) == before


def test_a_set_encoded_again_is_refused() -> None:
    signed = A.publish()
    reencoded = SignedSet(json.dumps(body_of(signed)).encode(), signed.signature)  # same JSON, other bytes
    assert reencoded.body != signed.body

    assert take(reencoded, fresh_table()).reason == "bad_signature"


def test_a_relay_that_signs_an_origins_body_with_its_own_key_cannot_keep_the_origins_id() -> None:
    table = fresh_table()
    body = body_of(A.publish(2))
    body["publicKey"] = HOSTILE.public_key  # originId stays A's
    forged = sign(orjson.dumps(body), HOSTILE.private_key)

    outcome = take(forged, table)

    assert outcome.reason == "bad_signature"
    assert "records[].set.originId" in outcome.detail
    assert table.sets == {}


def test_a_relay_that_keeps_the_origins_key_but_signs_with_its_own_is_refused() -> None:
    table = fresh_table()
    forged = sign(A.publish(2).body, HOSTILE.private_key)

    outcome = take(forged, table)

    assert outcome.reason == "bad_signature"
    assert "records[].signature" in outcome.detail
    assert table.sets == {}


def test_a_body_signed_without_the_domain_prefix_is_refused() -> None:
    body = A.publish().body
    raw = SignedSet(body, A.key.sign(body))

    assert take(raw, fresh_table()).reason == "bad_signature"


# --- malformed items and bodies -------------------------------------------------------------------

GOOD_WIRE = A.publish().wire()
BAD_WIRE = {
    "not an object": ([GOOD_WIRE["set"], GOOD_WIRE["signature"]], "`set` and `signature`"),
    "signature missing": ({"set": GOOD_WIRE["set"]}, "`set` and `signature`"),
    "set missing": ({"signature": GOOD_WIRE["signature"]}, "`set` and `signature`"),
    "extra key": ({**GOOD_WIRE, "origin": "x"}, "`set` and `signature`"),
    "set not a string": ({**GOOD_WIRE, "set": 12}, "records[].set"),
    "set not base64": ({**GOOD_WIRE, "set": "not base64!"}, "records[].set"),
    "set not ascii": ({**GOOD_WIRE, "set": "é" * 8}, "records[].set"),
    "signature too short": ({**GOOD_WIRE, "signature": GOOD_WIRE["signature"][:-2]}, "records[].signature"),
    "signature too long": ({**GOOD_WIRE, "signature": GOOD_WIRE["signature"] + "00"}, "records[].signature"),
    "signature not hex": ({**GOOD_WIRE, "signature": "zz" * 64}, "records[].signature"),
}


@pytest.mark.parametrize("case", BAD_WIRE, ids=list(BAD_WIRE))
def test_a_malformed_wire_item_is_refused_naming_the_field(case: str) -> None:
    item, field = BAD_WIRE[case]

    with pytest.raises(RecordRefused) as refused:
        SignedSet.from_wire(item)

    assert refused.value.reason == "malformed"
    assert field in refused.value.detail


def body_with(**changes: Any) -> bytes:
    body = body_of(A.publish())
    body.update(changes)
    return orjson.dumps(body)


BAD_BODIES = {
    "not JSON": (b"{not json", "records[].set"),
    "unknown field": (body_with(ttl=1), "records[].set.ttl"),
    "missing field": (
        orjson.dumps({k: v for k, v in body_of(A.publish()).items() if k != "sequence"}),
        "records[].set.sequence",
    ),
    "sequence zero": (body_with(sequence=0), "records[].set.sequence"),
    "sequence a string": (body_with(sequence="2"), "records[].set.sequence"),
    "other version": (body_with(v=2), "records[].set.v"),
    "bad registerId": (
        body_with(advertisements=[{**advertisement("r1"), "registerId": "R1"}]),
        "records[].set.advertisements.0.registerId",
    ),
    "unknown advertisement field": (
        body_with(advertisements=[{**advertisement("r1"), "isPublic": True}]),
        "records[].set.advertisements.0.isPublic",
    ),
    "blank register name": (
        body_with(advertisements=[advertisement("r1", name="  ")]),
        "records[].set.advertisements.0.name",
    ),
    "too many advertisements": (
        body_with(advertisements=[advertisement(str(n)) for n in range(records.MAX_SET_ADVERTISEMENTS + 1)]),
        "records[].set.advertisements",
    ),
}


@pytest.mark.parametrize("case", BAD_BODIES, ids=list(BAD_BODIES))
def test_a_malformed_body_is_refused_naming_the_field(case: str) -> None:
    body, field = BAD_BODIES[case]
    table = fresh_table()

    outcome = take(sign(body, A.private_key), table)  # signed by the origin: the shape alone refuses it

    assert outcome.reason == "malformed"
    assert outcome.detail.startswith(field)
    assert table.sets == {}


def test_a_body_over_the_size_limit_is_refused_before_it_is_read() -> None:
    body = b" " * (records.MAX_SET_BYTES + 1)

    assert take(sign(body, A.private_key), fresh_table()).reason == "too_large"


# --- sequence -------------------------------------------------------------------------------------


def test_a_newer_set_replaces_the_origins_whole_set() -> None:
    table = fresh_table()
    take(A.publish(1, advertisements=[advertisement("kept"), advertisement("withdrawn")]), table)

    outcome = take(A.publish(2, advertisements=[advertisement("kept", description="changed")]), table)

    assert outcome.accepted
    record, _ = table.sets[A.origin_id]
    assert record.sequence == 2
    assert [(ad.registerId, ad.description) for ad in record.advertisements] == [(register_id("kept"), "changed")]


def test_a_set_without_any_register_withdraws_them_all() -> None:
    table = fresh_table()
    take(A.publish(1), table)

    assert take(A.publish(2, advertisements=[]), table).accepted
    assert table.sets[A.origin_id][0].advertisements == ()


def test_the_same_sequence_again_is_unchanged_and_quiet() -> None:
    table = fresh_table()
    take(A.publish(4), table)
    before = held_bytes(table)

    outcome = take(A.publish(4, advertisements=[advertisement("other")]), table, sender="relay-2")

    assert outcome.reason == "unchanged"
    assert outcome.reason in QUIET_REASONS
    assert held_bytes(table) == before


def test_an_older_sequence_is_a_replay() -> None:
    table = fresh_table()
    take(A.publish(4), table)
    before = held_bytes(table)

    outcome = take(A.publish(3), table)

    assert outcome.reason == "replayed"
    assert outcome.reason not in QUIET_REASONS
    assert "records[].set.sequence" in outcome.detail
    assert held_bytes(table) == before


# --- time bounds ----------------------------------------------------------------------------------

TIMES = {
    # name: (issuedAt, ttl, reason or None when accepted)
    "expired a moment ago": (NOW_MS - TTL_MS - 1, TTL_MS, "expired"),
    "expiring now": (NOW_MS - TTL_MS, TTL_MS, "expired"),
    "expiring a moment from now": (NOW_MS - TTL_MS + 1, TTL_MS, None),
    "expiring beyond ttl + skew": (NOW_MS, TTL_MS + SKEW_MS + 1, "too_far_ahead"),
    "expiring exactly at ttl + skew": (NOW_MS, TTL_MS + SKEW_MS, None),
    "issued beyond the skew": (NOW_MS + SKEW_MS + 1, 1_000, "issued_in_future"),
    "issued exactly at the skew": (NOW_MS + SKEW_MS, 1_000, None),
}


@pytest.mark.parametrize("case", TIMES, ids=list(TIMES))
def test_a_set_is_taken_only_within_its_time_bounds(case: str) -> None:
    issued_at_ms, ttl_ms, reason = TIMES[case]
    table = fresh_table()

    outcome = take(A.publish(issued_at_ms=issued_at_ms, ttl_ms=ttl_ms), table)

    assert outcome.reason == reason
    assert (A.origin_id in table.sets) == (reason is None)


# --- who the origin is ----------------------------------------------------------------------------


def test_this_nodes_own_set_relayed_back_is_quietly_refused() -> None:
    table = fresh_table(own="a")

    outcome = take(A.publish(9), table)

    assert outcome.reason == "own"
    assert outcome.reason in QUIET_REASONS
    assert table.sets == {}


@pytest.mark.parametrize("sender", ["relay-1", "relay-2", A.origin_id])
def test_a_banned_origins_set_is_refused_whoever_relays_it(sender: str) -> None:
    table = fresh_table()
    table.banned.add(A.origin_id)

    outcome = take(A.publish(), table, sender=sender, verified_url=True)

    assert outcome.reason == "banned"
    assert outcome.reason not in QUIET_REASONS
    assert table.sets == {}
