"""Handing work to the Celery workers, by task name (the tasks live in `tasks/`, which imports us).

A change to a register is not a task of its own: it is marked pending in Redis and the first
change of a window schedules one flush (`registers.coalescing`) that carries every pending change.
"""

from __future__ import annotations

import contextlib
import logging
import time
import uuid
from datetime import datetime

import redis
from django.conf import settings
from kombu.exceptions import OperationalError

from registers import push_recovery, task_names
from registers.pending_pushes import PendingPushes
from sorcha_site.celery import app

logger = logging.getLogger(__name__)

# What noting a change and publishing its flush raise when Redis or the broker is down or unreachable.
BROKER_ERRORS: tuple[type[Exception], ...] = (OperationalError, redis.RedisError, OSError)
# After a failed publish, pushes are deferred without trying for this long, so a bulk admin action
# during a broker outage does not wait out a connect timeout per register.
BROKER_COOLDOWN_SECONDS = 5.0
# A scheduled flush may wait this long behind other tasks of a busy worker before a change starts another.
_QUEUED_MARGIN_SECONDS = 15.0
_broker_down_until = 0.0


def enqueue_push(register_id: str, deleted_at: datetime | None = None) -> str | None:
    """Mark one register as changed; the first change of a window schedules the flush that carries them all.

    Returns the id of the flush task this change scheduled, or None (a flush was already scheduled,
    or the broker or Redis is down). A change must never fail because either is down: the push is
    logged as deferred and the next full sync (startup or periodic) carries the change instead.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.warning("event=push_deferred register_id=%s error='broker unavailable (cooling down)'", register_id)
        return None
    chain = uuid.uuid4().hex
    pending = PendingPushes()
    try:
        if not pending.note(register_id, deleted_at, chain, scheduled_hold_seconds()):
            logger.debug("event=push_pending register_id=%s", register_id)
            return None
        task_id = schedule_flush(chain)
    except BROKER_ERRORS as exc:
        _broker_down_until = time.monotonic() + BROKER_COOLDOWN_SECONDS
        logger.warning("event=push_deferred register_id=%s error=%r", register_id, str(exc))
        _release_quietly(pending, chain)
        push_recovery.note_deferred()
        return None
    logger.debug("event=push_enqueued register_id=%s task_id=%s", register_id, task_id)
    return task_id


def schedule_flush(chain: str) -> str:
    """Queue the flush of `chain` to run one coalescing window from now; raises one of BROKER_ERRORS."""
    result = app.send_task(
        task_names.FLUSH_PUSHES,
        kwargs={"chain": chain, "requested_at": time.time()},
        countdown=settings.PUSH_COALESCE_WINDOW,
        retry=False,  # fail at once: the caller may be a web request waiting on this
    )
    return str(result.id)


def scheduled_hold_seconds() -> float:
    """How long a scheduled flush holds the flush key: its window, plus a while queued behind other tasks.

    Only a lost task (a purged queue, a worker killed mid-flush) waits this out; a slower one is
    harmless (a second chain starts, and the two merge when one of them finds the other's key).
    """
    return settings.PUSH_COALESCE_WINDOW + _QUEUED_MARGIN_SECONDS


def _release_quietly(pending: PendingPushes, chain: str) -> None:
    with contextlib.suppress(redis.RedisError):  # the key expires by itself after scheduled_hold_seconds()
        pending.release(chain)


def enqueue_recovery_if_due() -> str | None:
    """Queue a full sync when pushes were lost or deferred (`registers.push_recovery`); its task id, or None.

    Raises RedisError when Redis cannot be asked, or one of BROKER_ERRORS (the repair stays due).
    """
    if not push_recovery.claim_repair():
        return None
    try:
        return enqueue_full_sync(push_recovery.REASON)
    except BROKER_ERRORS:
        push_recovery.note_deferred()
        raise


def enqueue_full_sync(reason: str) -> str:
    """Queue a full sync; raises one of BROKER_ERRORS when the broker cannot take it."""
    result = app.send_task(task_names.FULL_SYNC, kwargs={"reason": reason}, retry=False)
    logger.info("event=full_sync_enqueued reason=%s task_id=%s", reason, result.id)
    return str(result.id)
