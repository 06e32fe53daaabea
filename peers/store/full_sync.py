"""A full sync applied to the store: its marks, its sweep and its record (ARCHITECTURE §4).

A full sync may span several requests that land on different processes: each request before
the last leaves its registers (its marks) and its counts in Redis; the last one reads them all,
sweeps what none of them listed and records the sync. The rules (what is swept, what the guard
holds, whether a snapshot is stale) are `decide`'s; this module only gathers their inputs and
hands the plans to the store's one commit path.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

import redis

from peers.store import decide
from peers.store.model import (
    BulkResult,
    DigestAnswer,
    FullSyncState,
    MarksLost,
    MarksUnavailable,
    StaleFullSync,
    format_micros,
    format_seconds,
)

if TYPE_CHECKING:
    from peers.store.store import AdvertisementStore

logger = logging.getLogger(__name__)

# Ids whose TTL one script call starts again (about 1 µs each: the other processes' reads wait ~1 ms).
REFRESH_STEP = 1_000


def judge(store: AdvertisementStore, snapshot_at: int) -> bool:
    """Raises StaleFullSync for a snapshot older than the last applied; True when that one is voided."""
    state = store.mirror.full_sync
    verdict = decide.judge_snapshot(
        snapshot_at, state, store.clock().now, skew_s=store.clock_skew, void_after_s=store.reconcile_interval
    )
    if verdict is decide.SnapshotVerdict.STALE:
        raise StaleFullSync(snapshot_at, state.last_snapshot_at)
    if verdict is decide.SnapshotVerdict.VOID:
        logger.warning(
            "event=full_sync_snapshot_voided prefix=%s stored=%s applied_at=%s incoming=%s",
            store.prefix,
            format_micros(state.last_snapshot_at),
            format_seconds(state.last_applied_at),
            format_micros(snapshot_at),
        )
        return True
    return False


def mark(store: AdvertisementStore, snapshot_at: int, listed: set[str], result: BulkResult) -> None:
    """A request before the last leaves its marks and counts in Redis, for whichever process gets the last."""
    if not store.degraded:
        clock = store.clock()
        plan = decide.plan_marks(store.keys, snapshot_at, listed, result, clock)
        if len(plan):
            store.committer.commit([plan], clock.now_ms, BulkResult())
    if store.degraded:
        raise MarksUnavailable(snapshot_at)


def sweep(
    store: AdvertisementStore,
    snapshot_at: int,
    listed: set[str],
    result: BulkResult,
    void: bool,
    total: int | None = None,
) -> None:
    """Mark-and-sweep: remove local ads neither listed by this sync nor changed after its snapshot, then
    record the sync. `total`, when the source says it, is how many registers the whole sync listed:
    marks that fall short of it were lost (Redis restarted or failed over between the requests)."""
    earlier = None
    if not store.degraded:
        try:
            earlier = store.committer.io.marks(snapshot_at)
        except redis.RedisError as exc:  # the sweep waits until the marks can be read
            store.committer.trip(exc)
    if earlier is None:
        raise MarksUnavailable(snapshot_at)
    marks, earlier_counts = earlier
    marked = listed | marks
    if total is not None and len(marked) < total:
        logger.warning(
            "event=full_sync_marks_missing prefix=%s snapshot_at=%s marked=%d total=%d",
            store.prefix,
            format_micros(snapshot_at),
            len(marked),
            total,
        )
        raise MarksLost(snapshot_at, len(marked), total)
    clock, previous = store.clock(), store.mirror.full_sync
    plans, verdict = decide.plan_sweep(
        store.keys,
        store.mirror.local,
        marked,
        snapshot_at,
        previous,
        clock,
        result,
        void=void,
        batch=store.commit_batch,
    )
    if verdict.held:
        logger.warning(
            "event=full_sync_removal_held prefix=%s snapshot_at=%s held=%d confirmed=%d listed=%d",
            store.prefix,
            format_micros(snapshot_at),
            len(verdict.held),
            len(verdict.remove),
            len(marked),
        )
    store.committer.commit(plans, clock.now_ms, result)
    state = FullSyncState(
        last_snapshot_at=snapshot_at,
        last_applied_at=clock.now,
        last_result={name: count + earlier_counts.get(name, 0) for name, count in result.as_dict().items()},
        held_snapshot_at=snapshot_at if verdict.held else None,
        held_ids=verdict.held,
        voided=previous.voided + (1 if void else 0),
    )
    record = decide.plan_record(store.keys, state, store.bookkeeping_ttl_ms, clock, void=void)
    if store.committer.commit([record], clock.now_ms, BulkResult()).refused_records:
        logger.warning("event=full_sync_superseded prefix=%s snapshot_at=%s", store.prefix, format_micros(snapshot_at))
        return
    logger.log(
        logging.INFO if result.changed or result.held else logging.DEBUG,
        "event=full_sync_applied prefix=%s snapshot_at=%s %s",
        store.prefix,
        format_micros(snapshot_at),
        " ".join(f"{key}={value}" for key, value in result.as_dict().items()),
    )


def reconcile(
    store: AdvertisementStore, digest: Sequence[tuple[str, int]], snapshot_at: int, final: bool, total: int | None
) -> DigestAnswer:
    """One digest page: refresh what is held as stated, ask for the rest, and complete the sync on a
    final page that needs nothing."""
    clock = store.clock()
    held, needed = decide.split_digest(store.mirror.local, digest, clock.now)
    void = judge(store, snapshot_at) if final and not needed else False
    result = BulkResult()
    outcome = store.committer.commit(
        decide.plan_refresh(store.keys, held, clock, REFRESH_STEP), clock.now_ms, BulkResult()
    )
    needed.extend(outcome.missing)  # gone from Redis meanwhile (removed by another process): sent in full
    result.processed = result.unchanged = len(held) - len(outcome.missing)
    complete = final and not needed
    listed = {register_id for register_id, _ in digest}
    if complete:
        sweep(store, snapshot_at, listed, result, void, total)
    else:
        mark(store, snapshot_at, listed, result)
    return DigestAnswer(result, needed, complete)
