"""Which signed sets a node takes, and which it offers: the accept rules and anti-entropy (pure).

A node holds at most one set per origin, the newest it has accepted. A set is accepted only when
(ARCHITECTURE §4, "Remote advertisement"):

- its signature verifies and its origin id is its key's digest (`records.parse`);
- its sequence is newer than the one held (an equal one changes nothing);
- `expiresAt` lies in the future, no further ahead than `ADVERTISEMENT_TTL + CLOCK_SKEW_MAX`, and
  `issuedAt` is no later than now plus `CLOCK_SKEW_MAX`;
- its origin is not banned (nor, in allowlist mode, unadmitted), and is not this node;
- the sender is within its rate of sets applied, the origin within its rate of sequence bumps;
- there is room: at most `max_origins` origins, those whose URL this node has verified kept before
  relayed-only ones.

An accepted set replaces its origin's whole set, and lives until its own `expiresAt`.

Anti-entropy, as in Scuttlebutt: two nodes compare one digest of their (origin, sequence) maps;
when it differs, each sends its map and the other answers with the sets it holds newer, the
origins the other lacks or holds oldest first, within a byte budget.

Nothing here touches the database or Redis: a `Table` holds the sets (`MemoryTable` here, the
database's in `peers.gossip.relay`), and `bench/bench_network.py` runs this code for whole networks.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from peers.gossip.records import OriginSet, RecordRefused, SignedSet, parse

# The wire form of a set costs its body in base64 plus the signature and the JSON around them.
WIRE_OVERHEAD = 160


@dataclass(frozen=True)
class Limits:
    ttl_ms: int  # ADVERTISEMENT_TTL
    skew_ms: int  # CLOCK_SKEW_MAX
    max_origins: int  # GOSSIP_MAX_ORIGINS
    sets_per_sender: int  # sets applied per window from one sender
    bumps_per_origin: int  # sequence bumps accepted per window for one origin
    window_ms: int  # GOSSIP_RATE_WINDOW
    budget_bytes: int  # sets sent in one message, at most (at least one set always goes)


@dataclass(frozen=True)
class Held:
    """What a table holds of one origin."""

    sequence: int
    expires_at_ms: int
    verified_url: bool  # this node has called the origin's URL and got its signed reply


class Table(Protocol):
    def held(self, origin_id: str) -> Held | None: ...

    def count(self, now_ms: int) -> int: ...

    def relayed_only(self, now_ms: int) -> str | None:
        """An origin held only through relays (not verified), to drop for a verified one; None if none."""

    def put(self, record: OriginSet, verified_url: bool) -> None: ...

    def drop(self, origin_id: str) -> None: ...

    def refused(self, record: OriginSet) -> tuple[str, str] | None:
        """(reason, detail) when this set is refused here for who its origin is (banned, not admitted,
        this node) or for what it would hold (over GOSSIP_MAX_REMOTE_ADS); None otherwise."""


class Rates(Protocol):
    def take(self, kind: str, key: str, limit: int, now_ms: int) -> bool:
        """Count one under (kind, key) in the current window; False once over `limit`."""


@dataclass(frozen=True)
class Outcome:
    record: OriginSet | None
    reason: str | None = None  # None: accepted
    detail: str = ""
    evicted: str | None = None  # an origin dropped to make room

    @property
    def accepted(self) -> bool:
        return self.reason is None


# Reasons that are no fault of the sender: the same or an older set, heard again from another relay.
QUIET_REASONS = frozenset({"unchanged", "own"})


def accept(
    signed: SignedSet,
    table: Table,
    now_ms: int,
    limits: Limits,
    *,
    sender: str,
    rates: Rates,
    verified_url: bool = False,
) -> Outcome:
    """Decide on one set and, when it is accepted, put it in `table` in place of its origin's set."""
    try:
        record = parse(signed)
    except RecordRefused as exc:
        return Outcome(None, exc.reason, exc.detail)
    held = table.held(record.origin_id)
    refusal = judge(record, held, now_ms, limits)
    if refusal is None:
        refusal = table.refused(record)
    if refusal is not None:
        return Outcome(record, *refusal)
    if not rates.take("sets", sender, limits.sets_per_sender, now_ms):
        return Outcome(record, "sender_rate", f"records: over {limits.sets_per_sender} sets per window from {sender}")
    evicted = None
    if held is None and table.count(now_ms) >= limits.max_origins:
        evicted = table.relayed_only(now_ms) if verified_url else None
        if evicted is None:
            return Outcome(record, "origins_cap", f"records[].set.originId: over {limits.max_origins} origins held")
    if not rates.take("bumps", record.origin_id, limits.bumps_per_origin, now_ms):
        return Outcome(record, "origin_rate", "records[].set.sequence: this origin's sets come too often")
    if evicted is not None:
        table.drop(evicted)
    table.put(record, verified_url)
    return Outcome(record, evicted=evicted)


def judge(record: OriginSet, held: Held | None, now_ms: int, limits: Limits) -> tuple[str, str] | None:
    """The (reason, detail) a set is refused for by its sequence and times, or None: pure."""
    if held is not None and record.sequence <= held.sequence:
        if record.sequence == held.sequence:
            return "unchanged", "records[].set.sequence: this set is held already"
        return "replayed", f"records[].set.sequence: {record.sequence} is older than the {held.sequence} held"
    if record.expires_at_ms <= now_ms:
        return "expired", "records[].set.expiresAt: is past"
    if record.expires_at_ms > now_ms + limits.ttl_ms + limits.skew_ms:
        return "too_far_ahead", "records[].set.expiresAt: is further ahead than ADVERTISEMENT_TTL + CLOCK_SKEW_MAX"
    if record.issued_at_ms > now_ms + limits.skew_ms:
        return "issued_in_future", "records[].set.issuedAt: is later than now + CLOCK_SKEW_MAX"
    return None


def digest(versions: Mapping[str, int]) -> str:
    """One hash of a whole (origin, sequence) map: equal on two nodes when they hold the same sets."""
    text = "".join(f"{origin}:{versions[origin]}\n" for origin in sorted(versions))
    return hashlib.sha256(text.encode("ascii")).hexdigest()


def to_send(
    mine: Iterable[tuple[str, int, SignedSet]], theirs: Mapping[str, int], budget_bytes: int
) -> list[SignedSet]:
    """The sets the other side lacks or holds older, the origins it holds oldest first, within the
    budget (one set always goes, whatever its size: a set larger than the budget must still travel)."""
    wanted = sorted(
        (
            (theirs.get(origin, 0), origin, signed)
            for origin, sequence, signed in mine
            if sequence > theirs.get(origin, 0)
        ),
        key=lambda item: (item[0], item[1]),
    )
    chosen: list[SignedSet] = []
    spent = 0
    for _, _, signed in wanted:
        cost = wire_size(signed)
        if chosen and spent + cost > budget_bytes:
            break
        chosen.append(signed)
        spent += cost
    return chosen


def wire_size(signed: SignedSet) -> int:
    return (len(signed.body) + 2) // 3 * 4 + WIRE_OVERHEAD


@dataclass
class MemoryTable:
    """A table in memory (the network benchmark's nodes, and unit tests)."""

    own_id: str
    sets: dict[str, tuple[OriginSet, bool]] = field(default_factory=dict)
    banned: set[str] = field(default_factory=set)

    def held(self, origin_id: str) -> Held | None:
        entry = self.sets.get(origin_id)
        return None if entry is None else Held(entry[0].sequence, entry[0].expires_at_ms, entry[1])

    def count(self, now_ms: int) -> int:
        """Other origins' unexpired sets (this node's own takes no room)."""
        return sum(
            1 for origin, (record, _) in self.sets.items() if origin != self.own_id and record.expires_at_ms > now_ms
        )

    def relayed_only(self, now_ms: int) -> str | None:
        candidates = [
            (record.expires_at_ms, origin)
            for origin, (record, ok) in self.sets.items()
            if not ok and record.expires_at_ms > now_ms
        ]
        return min(candidates)[1] if candidates else None

    def put(self, record: OriginSet, verified_url: bool) -> None:
        self.sets[record.origin_id] = (record, verified_url)

    def drop(self, origin_id: str) -> None:
        self.sets.pop(origin_id, None)

    def refused(self, record: OriginSet) -> tuple[str, str] | None:
        if record.origin_id == self.own_id:
            return "own", "records[].set.originId: is this node's own"
        if record.origin_id in self.banned:
            return "banned", f"records[].set.originId: {record.origin_id} is banned here"
        return None

    def versions(self, now_ms: int) -> dict[str, int]:
        return {origin: record.sequence for origin, (record, _) in self.sets.items() if record.expires_at_ms > now_ms}

    def offered(self, now_ms: int) -> list[tuple[str, int, SignedSet]]:
        return [
            (origin, record.sequence, record.signed)
            for origin, (record, _) in self.sets.items()
            if record.expires_at_ms > now_ms
        ]


@dataclass
class MemoryRates:
    """Fixed windows in memory (the benchmark's nodes, unit tests); the node's own are in Redis."""

    window_ms: int
    counts: dict[tuple[str, str, int], int] = field(default_factory=dict)

    def take(self, kind: str, key: str, limit: int, now_ms: int) -> bool:
        slot = (kind, key, now_ms // self.window_ms)
        if len(self.counts) > 100_000:
            self.counts = {k: v for k, v in self.counts.items() if k[2] == slot[2]}
        count = self.counts[slot] = self.counts.get(slot, 0) + 1
        return count <= limit
