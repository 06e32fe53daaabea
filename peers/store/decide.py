"""The store's decisions as pure functions (ARCHITECTURE §4): (what is held, an input, now) -> a plan.

A `Plan` is one script call's worth of writes and tombstones, each labelled with what the
planner counts it as, and the state the mirror takes should Redis accept every write (what a
process serves while Redis is down). `tally` turns the planned labels and Redis's results into
the counts. Nothing here knows Redis, threads or Django: the store applies plans and does
nothing else, and each rule has a unit test of its own (tests/peers/test_decide.py).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum

from peers.store.model import (
    REMOVED,
    SWEPT,
    AdvertisementInput,
    BulkResult,
    Entry,
    FullSyncState,
    Tombstone,
    encode_value,
    merged_fields,
)
from peers.store.plan import GONE, Clock, KeyState, Plan, Plans, tally
from peers.store.redis_io import Keys

__all__ = ["GONE", "Clock", "KeyState", "Plan", "Plans", "tally"]  # the plan's data, with the planners


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


# ---------------------------------------------------------------------- plans
def plan_items(
    keys: Keys,
    local: Mapping[str, Entry],
    tombstones: Mapping[str, Tombstone],
    items: Iterable[AdvertisementInput],
    clock: Clock,
    result: BulkResult,
    *,
    floor: int | None,
    batch: int,
    stamp_now: int,
) -> Iterator[Plan]:
    """Pushes and bulks: `isPublic` true upserts, false removes (never held by a guard).

    An upsert older than what is held (or than a live tombstone) is stale and planned as nothing;
    consecutive upserts travel as one U operation. `floor`: a full sync's snapshot, which sweeps'
    tombstones older than it yield to. Yields a plan per `batch` items, so the first is written
    while the next is planned.
    """
    plan, planned = Plan(), 0
    upserts: list[str] | None = None  # the open U operation's arguments, its place, what each item counts as
    upserts_at, counted = 0, list[str]()
    now, until, local_prefix, tomb_prefix = clock.now, clock.until_ms, keys.local(""), keys.tomb("")

    def close_upserts() -> None:  # the open U operation's labels, joined once (not grown item by item)
        if upserts is not None:
            plan.ops.labels[upserts_at] = "".join(counted)

    for item in items:
        result.processed += 1
        register_id = item.register_id
        current = live(local.get(register_id), now)
        if not item.is_public:
            close_upserts()
            upserts = None
            removal = plan_removal(keys, register_id, item.source_updated_at, current, clock, result)
            if removal is None:
                continue
            plan.ops.add(removal[0], removal[1])
            plan.expected.extend(removal[2])
        else:
            stamp = item.source_updated_at if item.source_updated_at is not None else stamp_now
            tomb = tombstones.get(register_id)
            if (current is not None or tomb is not None) and upsert_is_stale(current, tomb, stamp, now, floor):
                result.stale += 1
                continue
            value = encode_value(stamp, merged_fields(item, current.fields if current else None))
            if upserts is None:
                upserts = ["U", local_prefix, tomb_prefix, str(clock.ttl_ms), str(-1 if floor is None else floor)]
                upserts_at, counted = len(plan.ops), []
                plan.ops.add_strings(upserts)
            upserts += (register_id, str(stamp), value)
            counted.append("a" if current is None else ("n" if current.value == value else "u"))
            plan.expected.append((local_prefix + register_id, value, until))
            if tomb is not None:
                plan.expected.append((tomb_prefix + register_id, "", GONE))
        planned += 1
        if planned >= batch:
            close_upserts()
            yield plan
            plan, upserts, planned = Plan(), None, 0
    close_upserts()
    if len(plan):
        yield plan


def plan_removal(
    keys: Keys,
    register_id: str,
    stamp: int | None,
    current: Entry | None,
    clock: Clock,
    result: BulkResult,
    kind: str = REMOVED,
    outranked_by: str = "",
) -> tuple[list[str | int], str, list[KeyState]] | None:
    """A removal (a sweep's: `kind` SWEPT, yielding to a newer full sync recorded at `outranked_by`):
    its operation, label and expected states; None when stale.

    One with a stamp leaves a tombstone for one TTL; one without (an operator's) leaves none, so
    the source's next full sync restores the register if it is still public.
    """
    if removal_is_stale(current, stamp, clock.now):
        result.stale += 1
        return None
    tomb_key = "" if stamp is None else keys.tomb(register_id)
    expected: list[KeyState] = [(keys.local(register_id), "", GONE)]
    if stamp is not None:
        expected.append((tomb_key, f"{stamp}|{kind}", clock.until_ms))
    op: list[str | int] = [
        "D",
        keys.local(register_id),
        -1 if stamp is None else stamp,
        tomb_key,
        clock.ttl_ms,
        kind,
        outranked_by,
    ]
    return op, "r" if current is not None else "x", expected


def plan_refresh(keys: Keys, register_ids: Sequence[str], clock: Clock, step: int) -> Iterator[Plan]:
    """A digest's registers held as stated: their TTL starts again, nothing is rewritten."""
    for start in range(0, len(register_ids), step):
        part = list(register_ids[start : start + step])
        plan = Plan(refreshed=part, refreshed_until=clock.until_ms / 1000)
        plan.ops.add(["T", keys.local(""), clock.ttl_ms, *part], "t" * len(part))
        yield plan


def plan_sweep(
    keys: Keys,
    local: Mapping[str, Entry],
    marked: set[str],
    snapshot_at: int,
    previous: FullSyncState,
    clock: Clock,
    result: BulkResult,
    *,
    void: bool,
    batch: int,
) -> tuple[list[Plan], SweepPlan]:
    """A full sync's sweep and the guard's verdict; `previous` is the last full sync recorded.

    Unless the sync voided the stored snapshot, every plan opens with a guard (a newer full sync
    recorded meanwhile makes it stale) and each removal yields to a newer full sync.
    """
    swept = sweep_candidates(local, marked, snapshot_at, clock.now)
    live_count = sum(1 for entry in local.values() if entry.expires_at > clock.now)
    verdict = guard_sweep(swept, live_count, len(marked), previous, snapshot_at)
    plans = Plans(batch, header=None if void else ["G", keys.meta, str(snapshot_at)])
    outranked_by = "" if void else keys.meta
    for register_id in sorted(verdict.remove):
        removal = plan_removal(
            keys, register_id, snapshot_at, live(local.get(register_id), clock.now), clock, result, SWEPT, outranked_by
        )
        if removal is not None:
            plans.add(removal[0], removal[1], *removal[2])
    result.held = len(verdict.held)
    made = plans.take()
    if not made and plans.header is not None:
        made = [Plan()]
        made[0].ops.add(plans.header)  # the guard alone: a stale sync records nothing
    return made, verdict


def plan_record(keys: Keys, state: FullSyncState, bookkeeping_ttl_ms: int, clock: Clock, *, void: bool) -> Plan:
    """Record a full sync (refused, "0", if a newer one was recorded meanwhile) and drop its marks."""
    plan = Plan()
    value = state.encode()
    plan.ops.add(["M", keys.meta, state.last_snapshot_at, value, bookkeeping_ttl_ms, "1" if void else "0"], "m")
    plan.ops.add(["X", keys.mark(state.last_snapshot_at), keys.mark_counts(state.last_snapshot_at)])
    plan.expected.append((keys.meta, value, clock.now_ms + bookkeeping_ttl_ms))
    return plan


def plan_marks(keys: Keys, snapshot_at: int, listed: set[str], result: BulkResult, clock: Clock) -> Plan:
    """A full sync's request before its last: its registers and counts, kept for the last one."""
    plan = Plan()
    if listed:
        plan.ops.add(["A", keys.mark(snapshot_at), clock.ttl_ms, *sorted(listed)])
    counts = [str(part) for name, count in result.as_dict().items() if count for part in (name, count)]
    if counts:
        plan.ops.add(["H", keys.mark_counts(snapshot_at), clock.ttl_ms, *counts])
    return plan


def plan_remote_set(
    keys: Keys,
    peer_id: str,
    held: Mapping[str, Entry],
    items: Sequence[AdvertisementInput],
    clock: Clock,
    stamp_now: int,
    batch: int,
    *,
    until_ms: int | None = None,
    direct: bool = True,
) -> tuple[list[Plan], BulkResult]:
    """A peer's (an origin's) complete set replaces what it advertised before.

    A remote entry is stamped with this node's clock when first received in its current form,
    so a peer forgotten later (a peer tombstone) outranks any write-back of it. It expires at
    `until_ms` (a signed set's `expiresAt`, which no relay can extend), or one TTL from now for a
    set a peer told this node itself. `direct`: the origin is a peer this node exchanges with.
    """
    plans, result = Plans(batch), BulkResult(processed=len(items))
    peer_tomb = keys.peer_tomb(peer_id)
    until = clock.until_ms if until_ms is None else until_ms
    ttl = str(max(1, until - clock.now_ms))
    listed: set[str] = set()
    for item in items:
        existing = held.get(item.register_id)
        fields = merged_fields(item, None)
        if not direct:
            fields["direct"] = False
        if existing is not None and existing.fields == fields:
            stamp, value, label = existing.source_updated_at, existing.value, "n"
        else:
            stamp, value, label = stamp_now, encode_value(stamp_now, fields), "a" if existing is None else "u"
        key = keys.remote(peer_id, item.register_id)
        plans.add(["S", key, str(stamp), value, ttl, peer_tomb, "-1", ""], label, (key, value, until))
        listed.add(item.register_id)
    for register_id in held.keys() - listed:
        key = keys.remote(peer_id, register_id)
        plans.add(["D", key, -1, "", 0, REMOVED], "r", (key, "", GONE))
    return plans.take(), result


def plan_forget(
    keys: Keys, peer_id: str, held: Mapping[str, Entry], clock: Clock, stamp_now: int, batch: int
) -> list[Plan]:
    """Drop a peer's advertisements, and leave a tombstone no earlier write of them can pass."""
    plans = Plans(batch)
    tomb = keys.peer_tomb(peer_id)
    plans.add(["D", "", stamp_now, tomb, clock.ttl_ms, REMOVED], "x", (tomb, f"{stamp_now}|{REMOVED}", clock.until_ms))
    for register_id in held:
        key = keys.remote(peer_id, register_id)
        plans.add(["D", key, stamp_now, "", 0, REMOVED], "r", (key, "", GONE))
    return plans.take()
