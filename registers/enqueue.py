"""Handing a full sync to the Celery workers, by task name (the tasks live in `tasks/`, which imports us).

A register's change is not handed over here: it waits in the outbox and goes with a flush
(`registers.pushes`).
"""

from __future__ import annotations

import logging

import redis
from kombu.exceptions import OperationalError

from registers import task_names
from sorcha_site.celery import app

logger = logging.getLogger(__name__)

# What publishing a task raises when the broker is down or unreachable.
BROKER_ERRORS: tuple[type[Exception], ...] = (OperationalError, redis.RedisError, OSError)


def enqueue_full_sync(reason: str) -> str:
    """Queue a full sync; raises one of BROKER_ERRORS when the broker cannot take it."""
    result = app.send_task(task_names.FULL_SYNC, kwargs={"reason": reason}, retry=False)
    logger.info("event=full_sync_enqueued reason=%s task_id=%s", reason, result.id)
    return str(result.id)
