"""One flush of coalesced pushes: take the waiting changes, send their current state, then re-arm or stop.

A flush belongs to a *chain*: the task a change scheduled, its retries, and the flushes it re-arms
while changes keep arriving. One chain at a time holds the node's flush key (`FlushKey`), so a burst
of changes costs one bulk request per window, not one request per change. The changes themselves
wait in the database (`registers.pending_pushes`) until a flush has delivered them: a flush that
fails leaves them there, and the key is only a hint (Redis errors on it are logged, never fatal).
"""

from __future__ import annotations

import logging

import redis
from django.conf import settings
from django.db import OperationalError

from registers import advertising, enqueue, pending_pushes
from registers.peer_client import PeerServiceClient, PeerServiceRejected, PeerServiceUnavailable
from registers.pending_pushes import FlushKey
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


def flush(chain: str, key: FlushKey | None = None, client: PeerServiceClient | None = None) -> advertising.PushResult:
    """Push every waiting change; re-arm the chain if more arrived meanwhile.

    Raises PeerServiceUnavailable or OperationalError with the changes still waiting (the task retries
    with backoff, carrying whatever was added meanwhile too), and the first PeerServiceRejected after
    the others were delivered (a 4xx is permanent: not retried).
    """
    key = key or FlushKey()
    _hold(key, chain, running_hold_seconds())
    taken = pending_pushes.take(settings.SORCHA_BULK_MAX_ITEMS * 10)
    result = advertising.PushResult()
    try:
        if taken:
            result = advertising.push_changes(
                taken.all_ids(),
                taken.deleted_at,
                heartbeat=lambda: _hold(key, chain, running_hold_seconds()),
                client=client,
            )
    except (PeerServiceUnavailable, OperationalError) as exc:
        _hold(key, chain, retry_hold_seconds())
        logger.warning("event=push_flush_failed registers=%d will_retry=true error=%r", len(taken), str(exc))
        raise
    except PeerServiceRejected as exc:
        # The whole request was refused (a token, a route, a content type): nothing of it was applied.
        # The changes wait, held like a retry's, for the next flush or the periodic full sync.
        _hold(key, chain, retry_hold_seconds())
        logger.error("event=push_flush_refused registers=%d status=%d error=%r", len(taken), exc.status, str(exc))
        raise
    # Delivered (or refused one by one, which no retry changes): forget what was taken.
    pending_pushes.delivered(taken)
    if taken:
        logger.info("event=push_flushed %s", result.summary())
    else:
        logger.debug("event=push_flushed registers=0 requests=0 (another flush carried the changes)")
    rearm(chain, key)
    if result.rejected:
        raise result.rejected[0]
    return result


def rearm(chain: str, key: FlushKey) -> None:
    """End this flush; if changes are waiting, schedule the chain's next one a window from now.

    The key is freed before the outbox is read: a change whose own claim found the key still held
    committed before that claim, so this read sees it.
    """
    release(chain, key)
    if not pending_pushes.any_waiting():
        return
    try:
        if not key.claim(chain, enqueue.scheduled_hold_seconds()):
            return  # another chain took the key: it carries them
    except redis.RedisError as exc:
        logger.warning("event=flush_key_unavailable chain=%s error=%r action=flush_without_key", chain, exc)
    try:
        enqueue.schedule_flush(chain)
    except enqueue.BROKER_ERRORS as exc:
        logger.warning("event=push_deferred chain=%s error=%r (the beat's check flushes them)", chain, exc)
        release(chain, key)


def release(chain: str, key: FlushKey | None = None) -> None:
    """Free the flush key without re-arming: waiting changes go with the next change's flush or the check's."""
    enqueue.release_quietly(key or FlushKey(), chain)


def _hold(key: FlushKey, chain: str, seconds: float) -> None:
    try:
        key.hold(chain, seconds)
    except redis.RedisError as exc:
        # Not worth failing a flush over: at worst another chain starts and both send the current state.
        logger.warning("event=push_flush_hold_failed chain=%s error=%r", chain, exc)
