"""The rules of ARCHITECTURE §4, one test each, against the store's pure decisions (`decide`) alone.

No Redis and no database: plain entries, tombstones and full-sync states, and a fixed clock.
A plan's operations are what `commit.lua` would be asked to do; its labels are what each write
counts as should Redis accept it; `tally` turns labels and Redis's result digits into counts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from peers.store import decide
from peers.store.decide import GONE, Clock, KeyState, Plan, SnapshotVerdict
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
from peers.store.redis_io import Keys

NOW = 1_700_000_000.0  # this node's clock, seconds
TTL_MS = 300_000
CLOCK = Clock(NOW, TTL_MS)
KEYS = Keys("t")
SKEW_S = 300.0  # CLOCK_SKEW_MAX
INTERVAL_S = 150.0  # RECONCILE_INTERVAL
PEER = "p" * 16


def micros(seconds: float) -> int:
    return int(seconds * 1_000_000)


STAMP = micros(NOW - 3_600)  # a register's updated_at, the source's clock
SNAP = micros(NOW - 60)  # a full sync's snapshotAt
IDS = [f"{index:032x}" for index in range(1, 13)]
A, B, C, D, E = IDS[:5]


def held(
    register_id: str, stamp: int, *, expires_at: float = NOW + 200, peer_id: str | None = None, **fields: object
) -> Entry:
    merged = merged_fields(AdvertisementInput(register_id, **fields), None)  # type: ignore[arg-type]
    return Entry(register_id, peer_id, stamp, merged, encode_value(stamp, merged), NOW - 100, expires_at, True)


def pushed(register_id: str, stamp: int | None, *, is_public: bool = True, **fields: object) -> AdvertisementInput:
    return AdvertisementInput(register_id, is_public, source_updated_at=stamp, **fields)  # type: ignore[arg-type]


def plan_items(
    items: Iterable[AdvertisementInput],
    local: Mapping[str, Entry] | None = None,
    tombstones: Mapping[str, Tombstone] | None = None,
    floor: int | None = None,
) -> tuple[list[Plan], BulkResult]:
    result = BulkResult()
    plans = decide.plan_items(
        KEYS, local or {}, tombstones or {}, items, CLOCK, result, floor=floor, batch=100, stamp_now=micros(NOW)
    )
    return list(plans), result


def ops(plans: Iterable[Plan]) -> list[list[str]]:
    return [op for plan in plans for op in plan.ops.ops]


def labels(plans: Iterable[Plan]) -> str:
    return "".join(plan.ops.expected for plan in plans)


def expected(plans: Iterable[Plan]) -> list[KeyState]:
    return [state for plan in plans for state in plan.expected]


def sweep(
    local: Mapping[str, Entry], marked: set[str], previous: FullSyncState | None = None
) -> tuple[list[Plan], decide.SweepPlan, BulkResult]:
    result = BulkResult()
    plans, verdict = decide.plan_sweep(
        KEYS, local, marked, SNAP, previous or FullSyncState(), CLOCK, result, void=False, batch=100
    )
    return plans, verdict, result


# ---------------------------------------------------------------- ordering
def test_an_upsert_older_than_the_held_entry_changes_nothing() -> None:
    """A write whose sourceUpdatedAt is older than what the store holds for that register changes nothing."""
    local = {A: held(A, STAMP, name="current")}
    plans, result = plan_items([pushed(A, STAMP - 1, name="older")], local)
    assert (plans, result.stale, result.processed) == ([], 1, 1)
    newer, _ = plan_items([pushed(A, STAMP + 1, name="newer")], local)
    assert labels(newer) == "u"


def test_an_entry_past_its_ttl_no_longer_outranks_a_write() -> None:
    """An advertisement lives one TTL after its last refresh; after that nothing is held for it."""
    local = {A: held(A, STAMP, expires_at=NOW)}
    assert decide.live(local[A], NOW) is None
    plans, result = plan_items([pushed(A, STAMP - 1)], local)
    assert (labels(plans), result.stale) == ("a", 0)


def test_a_live_tombstone_at_least_as_new_refuses_an_upsert() -> None:
    """A write older than a removal tombstone, kept for one TTL, changes nothing."""
    tombstones = {A: Tombstone(STAMP, NOW + 1, REMOVED)}
    for stamp in (STAMP - 1, STAMP):
        plans, result = plan_items([pushed(A, stamp)], tombstones=tombstones)
        assert (plans, result.stale) == ([], 1), stamp
    plans, result = plan_items([pushed(A, STAMP + 1)], tombstones=tombstones)
    assert (labels(plans), result.stale) == ("a", 0)
    assert (KEYS.tomb(A), "", GONE) in expected(plans)  # the newer entry outranks the tombstone


def test_an_expired_tombstone_refuses_nothing() -> None:
    """A removal tombstone is kept for one TTL only."""
    tombstones = {A: Tombstone(STAMP, NOW, REMOVED)}
    assert not decide.tombstone_blocks(tombstones[A], STAMP - 1, NOW, None)
    plans, result = plan_items([pushed(A, STAMP - 1)], tombstones=tombstones)
    assert (labels(plans), result.stale) == ("a", 0)


def test_a_removal_carries_its_stamp_and_leaves_a_tombstone_for_one_ttl() -> None:
    """A removal carries the sourceUpdatedAt of the change that caused it; its tombstone is kept for one TTL."""
    plans, result = plan_items([pushed(A, STAMP + 5, is_public=False)], {A: held(A, STAMP)})
    assert ops(plans) == [["D", KEYS.local(A), str(STAMP + 5), KEYS.tomb(A), str(TTL_MS), REMOVED, ""]]
    assert labels(plans) == "r"
    assert expected(plans) == [(KEYS.local(A), "", GONE), (KEYS.tomb(A), f"{STAMP + 5}|{REMOVED}", CLOCK.until_ms)]
    assert CLOCK.until_ms == CLOCK.now_ms + TTL_MS
    assert result.stale == 0


def test_a_removal_without_a_stamp_leaves_no_tombstone() -> None:
    """A removal without sourceUpdatedAt (an operator's) leaves no blocking tombstone and always applies."""
    plans, result = plan_items([pushed(A, None, is_public=False)], {A: held(A, STAMP)})
    assert ops(plans) == [["D", KEYS.local(A), "-1", "", str(TTL_MS), REMOVED, ""]]
    assert expected(plans) == [(KEYS.local(A), "", GONE)]
    assert (labels(plans), result.stale) == ("r", 0)
    assert not decide.removal_is_stale(held(A, STAMP + 10**9), None, NOW)


def test_a_removal_older_than_the_held_entry_is_stale() -> None:
    """A removal whose sourceUpdatedAt is older than the held entry changes nothing."""
    local = {A: held(A, STAMP)}
    assert decide.removal_is_stale(local[A], STAMP - 1, NOW)
    plans, result = plan_items([pushed(A, STAMP - 1, is_public=False)], local)
    assert (plans, result.stale, result.removed) == ([], 1, 0)


# ---------------------------------------------------------------- full sync
def test_mark_and_sweep_removes_only_unlisted_ads_unchanged_since_the_snapshot() -> None:
    """Local ads neither marked by this sync nor changed after snapshotAt are removed."""
    local = {
        A: held(A, SNAP - 10),  # listed
        B: held(B, SNAP + 1),  # created and pushed while the sync was in flight
        C: held(C, SNAP - 10),  # unlisted, older than the snapshot
        D: held(D, SNAP),  # unlisted, as of the snapshot: the snapshot saw it unadvertised
        E: held(E, SNAP - 10, expires_at=NOW),  # gone already
    }
    assert decide.sweep_candidates(local, {A}, SNAP, NOW) == {C, D}


def test_a_sweep_is_stamped_with_the_snapshot_and_yields_to_a_newer_full_sync() -> None:
    """A removal made by a full sync's sweep is stamped with that sync's snapshotAt."""
    plans, verdict, result = sweep({A: held(A, SNAP - 10), B: held(B, SNAP - 10), C: held(C, SNAP - 10)}, {A, B})
    assert verdict.remove == {C} and not verdict.held
    assert ops(plans) == [
        ["G", KEYS.meta, str(SNAP)],  # refused whole if a newer full sync was recorded meanwhile
        ["D", KEYS.local(C), str(SNAP), KEYS.tomb(C), str(TTL_MS), SWEPT, KEYS.meta],
    ]
    assert expected(plans) == [(KEYS.local(C), "", GONE), (KEYS.tomb(C), f"{SNAP}|{SWEPT}", CLOCK.until_ms)]
    assert labels(plans) == "r"
    assert result.held == 0


def test_a_full_sync_older_than_the_last_applied_is_stale() -> None:
    """A full sync whose snapshotAt is older than the last applied one is refused as stale."""
    state = FullSyncState(last_snapshot_at=SNAP, last_applied_at=NOW - 1)
    judge = decide.judge_snapshot
    assert judge(SNAP - 1, state, NOW, skew_s=SKEW_S, void_after_s=INTERVAL_S) is SnapshotVerdict.STALE
    assert judge(SNAP, state, NOW, skew_s=SKEW_S, void_after_s=INTERVAL_S) is SnapshotVerdict.CURRENT
    assert judge(SNAP + 1, state, NOW, skew_s=SKEW_S, void_after_s=INTERVAL_S) is SnapshotVerdict.CURRENT


def test_a_stored_snapshot_blocks_older_ones_for_at_most_one_reconcile_interval() -> None:
    """A stored state can never block reconciliation for longer than one RECONCILE_INTERVAL."""
    judge = decide.judge_snapshot
    recent = FullSyncState(last_snapshot_at=SNAP, last_applied_at=NOW - INTERVAL_S + 1)
    assert judge(SNAP - 1, recent, NOW, skew_s=SKEW_S, void_after_s=INTERVAL_S) is SnapshotVerdict.STALE
    old = FullSyncState(last_snapshot_at=SNAP, last_applied_at=NOW - INTERVAL_S)
    assert judge(SNAP - 1, old, NOW, skew_s=SKEW_S, void_after_s=INTERVAL_S) is SnapshotVerdict.VOID


def test_a_stored_snapshot_in_the_future_beyond_the_skew_is_void() -> None:
    """A future last-snapshot left by a clock step is voided."""
    judge = decide.judge_snapshot
    ahead = FullSyncState(last_snapshot_at=micros(NOW + SKEW_S) + 1, last_applied_at=NOW - 1)
    assert judge(SNAP, ahead, NOW, skew_s=SKEW_S, void_after_s=INTERVAL_S) is SnapshotVerdict.VOID
    within = FullSyncState(last_snapshot_at=micros(NOW + SKEW_S), last_applied_at=NOW - 1)
    assert judge(SNAP, within, NOW, skew_s=SKEW_S, void_after_s=INTERVAL_S) is SnapshotVerdict.STALE


def test_a_sweeps_tombstone_yields_to_a_newer_full_sync_whatever_the_updated_at() -> None:
    """A later full sync whose snapshotAt is newer and lists the register restores it, whatever its updated_at."""
    swept = Tombstone(SNAP, NOW + 1, SWEPT)
    assert decide.tombstone_blocks(swept, STAMP, NOW, None)  # a single push older than the sweep
    assert decide.tombstone_blocks(swept, STAMP, NOW, SNAP)  # a full sync no newer than the sweep
    assert not decide.tombstone_blocks(swept, STAMP, NOW, SNAP + 1)
    plans, result = plan_items([pushed(A, STAMP)], tombstones={A: swept}, floor=SNAP + 1)
    assert (labels(plans), result.stale) == ("a", 0)
    assert ops(plans)[0][:5] == ["U", KEYS.local(""), KEYS.tomb(""), str(TTL_MS), str(SNAP + 1)]
    assert (KEYS.tomb(A), "", GONE) in expected(plans)


def test_a_removals_tombstone_does_not_yield_to_a_full_sync() -> None:
    """A register unadvertised while a snapshot was in flight is not brought back by it."""
    removed = Tombstone(SNAP + 5, NOW + 1, REMOVED)
    assert decide.tombstone_blocks(removed, SNAP, NOW, SNAP + 10)
    plans, result = plan_items([pushed(A, SNAP)], tombstones={A: removed}, floor=SNAP + 10)
    assert (plans, result.stale) == ([], 1)


def test_a_full_sync_touches_local_advertisements_only() -> None:
    """Full sync touches local advertisements only; remote ones are untouched (FR-011)."""
    local = {rid: held(rid, SNAP - 10) for rid in IDS[:4]}
    plans, verdict, _ = sweep(local, {IDS[0], IDS[1]})
    record = decide.plan_record(KEYS, FullSyncState(last_snapshot_at=SNAP), 1_000, CLOCK, void=False)
    assert verdict.remove == {IDS[2], IDS[3]}
    owned = (f"{KEYS.prefix}:ad:l:", f"{KEYS.prefix}:tomb:", KEYS.meta, f"{KEYS.prefix}:marks:")
    touched = [arg for op in ops([*plans, record]) for arg in op[1:] if arg.startswith(f"{KEYS.prefix}:")]
    assert touched and all(key.startswith(owned) for key in touched), touched
    assert all(key.startswith(owned) for key, _, _ in expected([*plans, record]))


# ---------------------------------------------------------------- idempotence (FR-009)
def test_an_item_equal_to_what_is_stored_is_unchanged_and_only_its_ttl_refreshed() -> None:
    """An item equal to what is stored is unchanged: its TTL is refreshed and nothing else is written."""
    local = {A: held(A, STAMP, name="same", latest_version=3)}
    plans, result = plan_items([pushed(A, STAMP, name="same", latest_version=3)], local)
    assert labels(plans) == "n"
    assert expected(plans) == [(KEYS.local(A), local[A].value, CLOCK.until_ms)]
    assert decide.tally(labels(plans), b"2", result) == []
    assert (result.unchanged, result.added, result.updated, result.stale) == (1, 0, 0, 0)


# ---------------------------------------------------------------- mass-removal guard
def test_a_sweep_of_more_than_half_and_at_least_five_is_held() -> None:
    """A full sync that would remove more than half of the local ads (and at least 5) is held."""
    local = {rid: held(rid, SNAP - 10) for rid in IDS[:10]}
    plans, verdict, result = sweep(local, set(IDS[:4]))
    assert (verdict.remove, verdict.held, result.held) == (frozenset(), frozenset(IDS[4:10]), 6)
    assert not [op for op in ops(plans) if op[0] == "D"]
    half = decide.guard_sweep(set(IDS[5:10]), 10, 5, FullSyncState(), SNAP)
    assert (half.remove, half.held) == (frozenset(IDS[5:10]), frozenset())  # exactly half: not held
    five = decide.guard_sweep(set(IDS[:5]), 9, 4, FullSyncState(), SNAP)
    assert (five.remove, five.held) == (frozenset(), frozenset(IDS[:5]))  # exactly five: held


def test_an_empty_full_sync_removing_anything_is_held() -> None:
    """An empty full sync that would remove anything at all is held."""
    verdict = decide.guard_sweep({A}, 10, 0, FullSyncState(), SNAP)
    assert (verdict.remove, verdict.held) == (frozenset(), frozenset({A}))


def test_a_held_removal_is_applied_when_the_next_independent_full_sync_confirms_it() -> None:
    """The held removal is applied only when the next independent full sync confirms it."""
    candidates = set(IDS[4:10])
    previous = FullSyncState(last_snapshot_at=SNAP - 1, held_snapshot_at=SNAP - 1, held_ids=frozenset(candidates))
    confirmed = decide.guard_sweep(candidates | {IDS[10]}, 11, 4, previous, SNAP)
    assert (confirmed.remove, confirmed.held) == (frozenset(candidates), frozenset({IDS[10]}))
    same_sync = FullSyncState(last_snapshot_at=SNAP, held_snapshot_at=SNAP, held_ids=frozenset(candidates))
    repeated = decide.guard_sweep(candidates, 10, 4, same_sync, SNAP)
    assert (repeated.remove, repeated.held) == (frozenset(), frozenset(candidates))


def test_fewer_than_five_removals_are_never_held_by_a_listing_sync() -> None:
    """Only a sweep of at least 5 local ads is held (unless the sync is empty)."""
    verdict = decide.guard_sweep(set(IDS[:4]), 5, 1, FullSyncState(), SNAP)
    assert (verdict.remove, verdict.held) == (frozenset(IDS[:4]), frozenset())


def test_single_explicit_removals_are_never_held() -> None:
    """Single, explicit removals are never held."""
    local = {rid: held(rid, STAMP) for rid in IDS[:6]}
    plans, result = plan_items([pushed(rid, STAMP + 1, is_public=False) for rid in IDS[:6]], local)
    assert (labels(plans), result.held) == ("r" * 6, 0)


# ---------------------------------------------------------------- remote sets
def test_a_newer_remote_set_replaces_the_whole_set_and_equal_entries_keep_their_stamp() -> None:
    """A newer set replaces its origin's whole set (a withdrawal is a newer set without the register)."""
    old = micros(NOW - 500)
    remote = {rid: held(rid, old, peer_id=PEER, name=rid[-1]) for rid in (A, B, C)}
    items = [pushed(A, None, name=A[-1]), pushed(B, None, name="renamed"), pushed(D, None, name="new")]
    plans, result = decide.plan_remote_set(KEYS, PEER, remote, items, CLOCK, micros(NOW), 100)
    assert (labels(plans), result.processed) == ("nuar", 3)
    upserts = {op[1]: op for op in ops(plans) if op[0] == "S"}
    assert upserts[KEYS.remote(PEER, A)][2:4] == [str(old), remote[A].value]
    assert upserts[KEYS.remote(PEER, B)][2] == upserts[KEYS.remote(PEER, D)][2] == str(micros(NOW))
    assert all(op[5] == KEYS.peer_tomb(PEER) for op in upserts.values())
    assert ["D", KEYS.remote(PEER, C), "-1", "", "0", REMOVED] in ops(plans)
    assert (KEYS.remote(PEER, C), "", GONE) in expected(plans)


def test_forgetting_a_peer_leaves_a_peer_tombstone_stamped_now() -> None:
    """A forgotten peer leaves a tombstone no earlier write of its advertisements can pass."""
    stamp_now = micros(NOW)
    remote = {A: held(A, micros(NOW - 500), peer_id=PEER), B: held(B, micros(NOW - 500), peer_id=PEER)}
    plans = decide.plan_forget(KEYS, PEER, remote, CLOCK, stamp_now, 100)
    assert ops(plans)[0] == ["D", "", str(stamp_now), KEYS.peer_tomb(PEER), str(TTL_MS), REMOVED]
    assert expected(plans)[0] == (KEYS.peer_tomb(PEER), f"{stamp_now}|{REMOVED}", CLOCK.until_ms)
    assert sorted(op[1] for op in ops(plans)[1:]) == sorted(KEYS.remote(PEER, rid) for rid in (A, B))
    assert all(op[2] == str(stamp_now) for op in ops(plans))


# ---------------------------------------------------------------- digests
def test_a_digest_splits_into_held_as_stated_and_needed() -> None:
    """A digest's item is held when a live entry has the very same sourceUpdatedAt; the rest are sent in full."""
    local = {A: held(A, STAMP), B: held(B, STAMP), C: held(C, STAMP, expires_at=NOW), E: held(E, STAMP + 1)}
    digest = [(A, STAMP), (B, STAMP + 1), (C, STAMP), (D, STAMP), (E, STAMP)]
    assert decide.split_digest(local, digest, NOW) == ([A], [B, C, D, E])


# ---------------------------------------------------------------- counting
def test_tally_counts_a_refused_write_as_stale() -> None:
    """A write Redis refuses ("0": it holds something newer) changes nothing and counts as stale."""
    result = BulkResult()
    decide.tally("aunrx", b"00000", result)
    assert (result.stale, result.added, result.updated, result.unchanged, result.removed) == (3, 0, 0, 0, 0)


def test_tally_counts_written_upserts_as_added_or_updated_and_equal_ones_as_unchanged() -> None:
    """Responses count processed, added, updated, removed, unchanged; Redis's "2" is an equal item."""
    result = BulkResult()
    decide.tally("auurx", b"11211", result)
    assert (result.added, result.updated, result.unchanged, result.removed, result.stale) == (1, 1, 1, 2, 0)


def test_tally_counts_a_journaled_plan_as_planned() -> None:
    """Writes kept in memory while Redis is down count as what was planned."""
    result = BulkResult()
    assert decide.tally("aunrx", None, result) == []
    assert (result.added, result.updated, result.unchanged, result.removed, result.stale) == (1, 1, 1, 1, 0)


def test_tally_returns_the_positions_of_refreshes_redis_found_missing() -> None:
    """A refresh of an id Redis lacks is reported, so the source sends it in full."""
    assert decide.tally("ttt", b"101", BulkResult()) == [1]
    assert decide.tally("atm", b"110", BulkResult()) == [2]  # a record outranked by a newer full sync
