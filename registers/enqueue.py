"""Handing work to the Celery workers, by task name (the tasks live in `tasks/`, which imports us).

A change to a register is not a task of its own: it waits in the outbox (`registers.pending_pushes`,
written in the change's transaction) and the first change of a window schedules one flush
(`registers.coalescing`) that carries every waiting change. The beat's `check_pushes` schedules a
flush for changes that waited too long, whatever lost theirs.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta

import redis
from django.conf import settings
from django.utils import timezone
from kombu.exceptions import OperationalError

from registers import pending_pushes, task_names
from registers.pending_pushes import FlushKey
from sorcha_site.celery import app

logger = logging.getLogger(__name__)

# What publishing a task raises when the broker is down or unreachable.
BROKER_ERRORS: tuple[type[Exception], ...] = (OperationalError, redis.RedisError, OSError)
# After a failed publish, flushes are not scheduled for this long, so a bulk admin action during a
# broker outage does not wait out a connect timeout per register (its changes wait in the outbox).
BROKER_COOLDOWN_SECONDS = 5.0
# A scheduled flush may wait this long behind other tasks of a busy worker before a change starts another.
_QUEUED_MARGIN_SECONDS = 5.0
_broker_down_until = 0.0


def request_flush(register_id: str) -> str | None:
    """After a change committed (its row is in the outbox): schedule the flush of this window, if none is.

    Returns the id of the flush task this change scheduled, or None (a flush was already scheduled, or
    the broker or Redis is down: the change waits in the outbox for the beat's check, logged as deferred).
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.warning("event=push_deferred register_id=%s error='broker unavailable (cooling down)'", register_id)
        return None
    chain = uuid.uuid4().hex
    key = FlushKey()
    try:
        if not key.claim(chain, scheduled_hold_seconds()):
            logger.debug("event=push_pending register_id=%s", register_id)
            return None
    except redis.RedisError as exc:
        logger.warning(
            "event=push_deferred register_id=%s error=%r (the beat's check flushes it)", register_id, str(exc)
        )
        return None
    try:
        task_id = schedule_flush(chain)
    except BROKER_ERRORS as exc:
        _broker_down_until = time.monotonic() + BROKER_COOLDOWN_SECONDS
        logger.warning("event=push_deferred register_id=%s error=%r", register_id, str(exc))
        release_quietly(key, chain)
        return None
    logger.debug("event=push_enqueued register_id=%s task_id=%s", register_id, task_id)
    return task_id


def flush_overdue() -> str | None:
    """The beat's check: schedule a flush when a change waited longer than a scheduled flush should take.

    Whatever lost the change's flush (a broker message gone with a failed-over primary, a flush key that
    Redis lost or that a killed worker still holds, a publish refused while the broker was down), the
    change is still in the outbox. Returns the id of the flush scheduled, or None.
    """
    if not pending_pushes.waiting_since(timezone.now() - timedelta(seconds=scheduled_hold_seconds())):
        return None
    chain = uuid.uuid4().hex
    key = FlushKey()
    try:
        if not key.claim(chain, scheduled_hold_seconds()):
            return None  # a chain holds the key: it is running, retrying, or its hold lapses soon
    except redis.RedisError as exc:
        logger.warning("event=flush_key_unavailable error=%r action=flush_without_key", str(exc))
    task_id = schedule_flush(chain)
    logger.info("event=push_flush_overdue chain=%s task_id=%s", chain, task_id)
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


def release_quietly(key: FlushKey, chain: str) -> None:
    try:
        key.release(chain)
    except redis.RedisError as exc:
        logger.warning("event=push_flush_release_failed chain=%s error=%r (the key expires by itself)", chain, exc)


def enqueue_full_sync(reason: str) -> str:
    """Queue a full sync; raises one of BROKER_ERRORS when the broker cannot take it."""
    result = app.send_task(task_names.FULL_SYNC, kwargs={"reason": reason}, retry=False)
    logger.info("event=full_sync_enqueued reason=%s task_id=%s", reason, result.id)
    return str(result.id)
