"""Pushes that only a full sync can carry now: lost with the Register Service's Redis, or deferred.

A change to a register waits in Redis (`registers.pending_pushes`) until a flush carries it. Two
faults leave changes that no flush will carry:

- **Redis lost them.** The primary they were written to died before replicating them (a Sentinel
  failover), or Redis restarted empty. Both change the primary's replication id (`master_replid` in
  `INFO replication`): a promoted replica takes a new one, and so does a restarted server.
- **They were never noted.** Redis or the broker was down when the register was saved, so the push
  was deferred (`registers.enqueue`).

Both are recorded in the database, which neither fault touches, on the sync state's row: the lineage
the pending pushes were last written under, and since when pushes are deferred. The beat's check
(every `REDIS_CHECK_INTERVAL` seconds) and every flush call `claim_repair`; whoever finds a repair due
claims it with a conditional update (so exactly one process queues it), and the full sync it queues
reads the database, so it carries every change. Every full sync records the lineage it started under
and clears the deferral, since it carries whatever was pending before it. The first lineage a node
ever sees is only recorded: its startup full sync carries everything anyway.
"""

from __future__ import annotations

import logging

import redis
from django.db import DatabaseError
from django.db.models.functions import Coalesce, Now

from registers.sync_state import SINGLETON_ID, AdvertisementSyncState
from sorcha_site import redis_connections

logger = logging.getLogger(__name__)

REASON = AdvertisementSyncState.Reason.RECOVERY.value


def server_lineage() -> str:
    """The replication id of the primary the coordination connection reaches (raises RedisError)."""
    info = redis_connections.connection(redis_connections.COORDINATION).info("replication")
    return str(info["master_replid"])


def _state() -> AdvertisementSyncState:
    row, _ = AdvertisementSyncState.objects.get_or_create(pk=SINGLETON_ID)
    return row


def note_deferred() -> None:
    """A push could not be noted: a full sync must carry it (logged, never raised: the save stands)."""
    try:
        _state()
        AdvertisementSyncState.objects.filter(pk=SINGLETON_ID).update(
            pushes_deferred_at=Coalesce("pushes_deferred_at", Now())
        )
    except DatabaseError as exc:
        logger.error("event=push_deferral_unrecorded error=%r (the periodic full sync carries it)", exc)


def mark_carried() -> None:
    """Called by a full sync before it reads the database: it carries whatever was pending until now."""
    try:
        lineage = server_lineage()
    except redis.RedisError as exc:
        logger.warning("event=redis_lineage_unmarked error=%r (a recovery full sync may follow)", exc)
        lineage = None
    _state()
    changes: dict[str, object] = {"pushes_deferred_at": None}
    if lineage is not None:
        changes["redis_lineage"] = lineage
    AdvertisementSyncState.objects.filter(pk=SINGLETON_ID).update(**changes)


def claim_repair() -> bool:
    """True for exactly one caller when a recovery full sync is due (raises RedisError)."""
    lost = _lineage_changed()
    deferred = bool(
        AdvertisementSyncState.objects.filter(pk=SINGLETON_ID, pushes_deferred_at__isnull=False).update(
            pushes_deferred_at=None
        )
    )
    if deferred:
        logger.info("event=deferred_pushes_found action=full_sync")
    return lost or deferred


def _lineage_changed() -> bool:
    current = server_lineage()
    recorded = _state().redis_lineage
    if recorded == current:
        return False
    won = AdvertisementSyncState.objects.filter(pk=SINGLETON_ID, redis_lineage=recorded).update(redis_lineage=current)
    if not won or not recorded:
        return False
    logger.warning(
        "event=redis_lineage_changed recorded=%s current=%s action=full_sync (pending pushes may be lost)",
        recorded,
        current,
    )
    return True
