"""One flush of coalesced pushes: take the pending changes, send their current state, then re-arm or stop.

A flush belongs to a *chain*: the task a change scheduled, its retries, and the flushes it re-arms
while changes keep arriving. One chain at a time holds the node's flush key (`PendingPushes`), so
a burst of changes costs one bulk request per window, not one request per change.
"""

from __future__ import annotations

import logging
from datetime import datetime

import redis
from django.conf import settings
from django.db import OperationalError

from registers import advertising, enqueue
from registers.peer_client import PeerServiceClient, PeerServiceRejected, PeerServiceUnavailable
from registers.pending_pushes import PendingPushes, TakenChanges
from registers.sync_lock import backoff_cap_seconds

logger = logging.getLogger(__name__)

# Room beyond one request's timeouts before a running flush's hold on the key lapses.
_RUNNING_MARGIN_SECONDS = 5.0


def running_hold_seconds() -> float:
    """A running flush renews its hold before each request: one request's timeouts plus a margin."""
    return settings.PEER_SERVICE_CONNECT_TIMEOUT + settings.PEER_SERVICE_READ_TIMEOUT + _RUNNING_MARGIN_SECONDS


def retry_hold_seconds() -> float:
    """A failed flush holds the key until its retry (at most the backoff cap) has had time to run."""
    return backoff_cap_seconds() + enqueue.scheduled_hold_seconds()


def flush(
    chain: str, pending: PendingPushes | None = None, client: PeerServiceClient | None = None
) -> advertising.PushResult:
    """Push every pending change; re-arm the chain if more arrived meanwhile.

    Raises PeerServiceUnavailable or OperationalError after putting the changes back (the task retries
    with backoff, carrying whatever was added meanwhile too), and the first PeerServiceRejected after
    the others were delivered (a 4xx is permanent: not retried).
    """
    pending = pending or PendingPushes()
    taken = pending.take(chain, running_hold_seconds())
    result = advertising.PushResult()
    try:
        if taken:
            result = advertising.push_changes(
                taken.all_ids(),
                deletion_times(taken),
                heartbeat=lambda: _renew_hold(pending, chain),
                client=client,
            )
    except (PeerServiceUnavailable, OperationalError) as exc:
        _put_back(pending, taken, chain)
        logger.warning("event=push_flush_failed registers=%d will_retry=true error=%r", len(taken), str(exc))
        raise
    except PeerServiceRejected as exc:
        # The whole request was refused (a token, a route, a content type): nothing of it was applied.
        # The changes wait, held like a retry's, for the next flush or the periodic full sync.
        _put_back(pending, taken, chain)
        logger.error("event=push_flush_refused registers=%d status=%d error=%r", len(taken), exc.status, str(exc))
        raise
    except Exception:
        # A bug or another database error: keep the changes for the next flush, then let it be seen.
        _put_back(pending, taken, chain)
        raise
    if taken:
        logger.info("event=push_flushed %s", result.summary())
    else:
        logger.debug("event=push_flushed registers=0 requests=0 (another flush carried the changes)")
    rearm(chain, pending)
    if result.rejected:
        raise result.rejected[0]
    return result


def deletion_times(taken: TakenChanges) -> dict[str, datetime]:
    return {register_id: datetime.fromisoformat(stamp) for register_id, stamp in taken.deleted_at.items()}


def rearm(chain: str, pending: PendingPushes) -> None:
    """End this flush; if changes arrived while it ran, schedule the chain's next one a window from now."""
    try:
        if not pending.finish(chain, enqueue.scheduled_hold_seconds()):
            return
        enqueue.schedule_flush(chain)
    except enqueue.BROKER_ERRORS as exc:
        logger.warning("event=push_deferred chain=%s error=%r (the next change or full sync carries them)", chain, exc)
        release(chain, pending)


def release(chain: str, pending: PendingPushes | None = None) -> None:
    """Free the flush key without re-arming: pending changes wait for the next change or full sync."""
    try:
        (pending or PendingPushes()).release(chain)
    except redis.RedisError as exc:
        logger.warning("event=push_flush_release_failed chain=%s error=%r (the key expires by itself)", chain, exc)


def _renew_hold(pending: PendingPushes, chain: str) -> None:
    try:
        pending.hold(chain, running_hold_seconds())
    except redis.RedisError as exc:
        # Not worth failing a flush over: at worst another chain starts and both send the current state.
        logger.warning("event=push_flush_hold_failed chain=%s error=%r", chain, exc)


def _put_back(pending: PendingPushes, taken: TakenChanges, chain: str) -> None:
    try:
        pending.put_back(taken, chain, retry_hold_seconds())
    except redis.RedisError as exc:
        # Lost for the push path only: the next full sync carries these changes.
        logger.error("event=push_put_back_failed registers=%d error=%r", len(taken), exc)
