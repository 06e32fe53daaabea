"""Handing work to the Celery workers, by task name (the tasks live in `tasks/`, which imports us)."""

from __future__ import annotations

import logging
import time
from datetime import datetime

import redis
from kombu.exceptions import OperationalError

from registers import task_names
from registers.advertising import moment
from sorcha_site.celery import app

logger = logging.getLogger(__name__)

# What publishing raises when the broker is down or unreachable.
BROKER_ERRORS: tuple[type[Exception], ...] = (OperationalError, redis.RedisError, OSError)
# After a failed publish, pushes are deferred without trying for this long, so a bulk admin action
# during a broker outage does not wait out a connect timeout per register.
BROKER_COOLDOWN_SECONDS = 5.0
_broker_down_until = 0.0


def enqueue_push(register_id: str, deleted_at: datetime | None = None) -> str | None:
    """Queue a push of one register's state; returns the task id, or None when the broker is down.

    A change must never fail because the broker is down: the push is logged as deferred and the
    next full sync (startup or periodic) carries the change instead.
    """
    global _broker_down_until
    if time.monotonic() < _broker_down_until:
        logger.warning("event=push_deferred register_id=%s error='broker unavailable (cooling down)'", register_id)
        return None
    try:
        result = app.send_task(
            task_names.PUSH_REGISTER,
            kwargs={
                "register_id": register_id,
                "requested_at": time.time(),
                "deleted_at": moment(deleted_at) if deleted_at is not None else None,
            },
            retry=False,  # fail at once: the caller is a web request waiting on this
        )
    except BROKER_ERRORS as exc:
        _broker_down_until = time.monotonic() + BROKER_COOLDOWN_SECONDS
        logger.warning("event=push_deferred register_id=%s error=%r", register_id, str(exc))
        return None
    logger.debug("event=push_enqueued register_id=%s task_id=%s", register_id, result.id)
    return str(result.id)


def enqueue_full_sync(reason: str) -> str:
    """Queue a full sync; raises one of BROKER_ERRORS when the broker cannot take it."""
    result = app.send_task(task_names.FULL_SYNC, kwargs={"reason": reason}, retry=False)
    logger.info("event=full_sync_enqueued reason=%s task_id=%s", reason, result.id)
    return str(result.id)
