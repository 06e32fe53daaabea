"""The startup full sync: enqueued once per node start, however many worker processes start together.

The first worker to become ready claims a lease in Redis and enqueues the sync; workers that
become ready while the claim is held (the sync is queued, running or waiting to retry) leave
it to that one. The sync releases the claim when it ends, so a worker started after that —
a restart a minute later — pushes again. A worker that dies mid-sync leaves a claim that
expires within one request's time plus one retry delay.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import redis
from celery.signals import worker_ready
from django.conf import settings

from registers import task_names
from registers.enqueue import BROKER_ERRORS
from registers.sync_lock import Lease, backoff_cap_seconds, full_sync_lease_seconds
from sorcha_site.celery import app

logger = logging.getLogger(__name__)

CLAIM = "startup-sync"


def claim_seconds() -> float:
    """Covers one attempt's request and the wait before the next attempt; renewed at each."""
    return full_sync_lease_seconds() + backoff_cap_seconds()


def renew_claim(token: str | None) -> None:
    if token is None:
        return
    try:
        Lease(CLAIM).renew(token, claim_seconds())
    except redis.RedisError as exc:
        logger.warning("event=startup_sync_claim_renew_failed error=%r", exc)


def release_claim(token: str | None) -> None:
    if token is None:
        return
    try:
        Lease(CLAIM).release(token)
    except redis.RedisError as exc:
        logger.warning("event=startup_sync_claim_release_failed error=%r (it expires by itself)", exc)


@worker_ready.connect
def enqueue_startup_sync(sender: Any = None, **kwargs: Any) -> None:
    if not settings.SERVES_REGISTERS:
        return  # a Peer-only worker has no registers to push
    lease = Lease(CLAIM)
    token: str | None = uuid.uuid4().hex
    try:
        if not lease.acquire(str(token), claim_seconds()):
            logger.info("event=startup_sync_already_pending claim=%s", lease.holder())
            return
    except redis.RedisError as exc:
        # Better two startup syncs than none: they are idempotent.
        logger.warning("event=startup_sync_claim_unavailable error=%r action=enqueue_unclaimed", exc)
        token = None
    try:
        result = app.send_task(task_names.FULL_SYNC, kwargs={"reason": "startup", "startup_claim": token})
    except BROKER_ERRORS as exc:
        release_claim(token)
        logger.error("event=startup_sync_not_enqueued error=%r (the periodic full sync will do it)", str(exc))
        return
    logger.info("event=startup_sync_enqueued task_id=%s claim=%s", result.id, token)
