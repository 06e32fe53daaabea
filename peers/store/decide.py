"""The store's decisions as pure functions over plain data (ARCHITECTURE §4).

Given what the mirror holds, an input and the time, these say what should happen: whether a
write is newer than what is held, which local advertisements a full sync sweeps, which of
those the mass-removal guard holds back, and whether a full sync's snapshot is stale. They
know nothing of Redis, threads or Django, so the reference model of the state machine test
and the store agree by construction on the rules, and each rule is readable on its own.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from peers.store.model import SWEPT, Entry, FullSyncState, Tombstone

# The guard holds a sweep that removes more than half the local ads, and at least this many.
MASS_REMOVAL_MIN = 5


def live(entry: Entry | None, now: float) -> Entry | None:
    return entry if entry is not None and entry.expires_at > now else None


def tombstone_blocks(tomb: Tombstone | None, stamp: int, now: float, sweep_floor: int | None) -> bool:
    """A live tombstone at least as new as the write refuses it.

    A tombstone left by a sweep yields to a full sync whose snapshot is newer than the sweep's
    (`sweep_floor`): that snapshot saw the register public after the sweep was decided.
    """
    if tomb is None or tomb.expires_at <= now or tomb.source_updated_at < stamp:
        return False
    return not (tomb.kind == SWEPT and sweep_floor is not None and sweep_floor > tomb.source_updated_at)


def upsert_is_stale(
    current: Entry | None, tomb: Tombstone | None, stamp: int, now: float, sweep_floor: int | None = None
) -> bool:
    """An upsert older than the held entry, or than a removal's tombstone, changes nothing."""
    current = live(current, now)
    return tombstone_blocks(tomb, stamp, now, sweep_floor) or (
        current is not None and current.source_updated_at > stamp
    )


def removal_is_stale(current: Entry | None, stamp: int | None, now: float) -> bool:
    """A removal older than the held entry changes nothing (one without a stamp always applies)."""
    current = live(current, now)
    return current is not None and stamp is not None and current.source_updated_at > stamp


def sweep_candidates(local: Mapping[str, Entry], marked: set[str], snapshot_at: int, now: float) -> set[str]:
    """Mark-and-sweep: live local ads neither listed by this sync nor changed after its snapshot."""
    return {
        register_id
        for register_id, entry in local.items()
        if entry.expires_at > now and register_id not in marked and entry.source_updated_at <= snapshot_at
    }


def split_digest(
    local: Mapping[str, Entry], digest: Sequence[tuple[str, int]], now: float
) -> tuple[list[str], list[str]]:
    """A digest's items this store already holds as stated (live, the very same `sourceUpdatedAt`: the
    source stamps every change of an advertised field), and the items it needs in full."""
    held: list[str] = []
    needed: list[str] = []
    get = local.get
    for register_id, stamp in digest:
        entry = get(register_id)
        if entry is not None and entry.source_updated_at == stamp and entry.expires_at > now:
            held.append(register_id)
        else:
            needed.append(register_id)
    return held, needed


@dataclass(frozen=True, slots=True)
class SweepPlan:
    remove: frozenset[str]
    held: frozenset[str]


def guard_sweep(
    candidates: set[str], live_count: int, listed_count: int, previous: FullSyncState, snapshot_at: int
) -> SweepPlan:
    """The mass-removal guard: hold a sweep of most of the pool, or any sweep by an empty sync.

    A held removal is applied when the next, independent full sync (a newer snapshot) confirms it.
    """
    mass = len(candidates) > live_count / 2 and len(candidates) >= MASS_REMOVAL_MIN
    empty = listed_count == 0 and bool(candidates)
    if not (mass or empty):
        return SweepPlan(frozenset(candidates), frozenset())
    confirmable = previous.held_snapshot_at is not None and previous.held_snapshot_at < snapshot_at
    confirmed = candidates & previous.held_ids if confirmable else set()
    return SweepPlan(frozenset(confirmed), frozenset(candidates - confirmed))


class SnapshotVerdict(Enum):
    CURRENT = "current"  # as new as (or newer than) the last applied full sync
    STALE = "stale"  # older than the last applied one: refused
    VOID = "void"  # older, but the stored one can no longer be trusted: it is voided


def judge_snapshot(
    snapshot_at: int, state: FullSyncState, now: float, *, skew_s: float, void_after_s: float
) -> SnapshotVerdict:
    """Whether a full sync's snapshot may be applied against what the store remembers.

    A stored last snapshot blocks older ones for at most `void_after_s` (one reconcile
    interval) after it was applied, and not at all once it lies ahead of this node's clock by
    more than the allowed skew: a clock step on the source can never blind the node for long.
    """
    if snapshot_at >= state.last_snapshot_at:
        return SnapshotVerdict.CURRENT
    if state.last_snapshot_at > int((now + skew_s) * 1_000_000):
        return SnapshotVerdict.VOID
    if state.last_applied_at is None or now - state.last_applied_at >= void_after_s:
        return SnapshotVerdict.VOID
    return SnapshotVerdict.STALE
