"""Celery tasks of the Register Service: thin wrappers that retry and call `registers.advertising`.

Retries are declarative: a Peer Service that is down, slow or answering 5xx is retried with
capped, jittered exponential backoff; a 4xx is permanent and not retried (the client logged
the Peer Service's answer).
"""

from __future__ import annotations

import logging
import random
import time
from datetime import datetime, timedelta
from functools import partial
from typing import Any

import redis
from billiard.einfo import ExceptionInfo
from celery import Task, shared_task
from celery.signals import task_retry
from django.conf import settings
from django.db import OperationalError
from django.utils import timezone

from registers import advertising, pushes, sync_state, task_names
from registers.enqueue import BROKER_ERRORS
from registers.peer_client import PeerServiceRejected, PeerServiceUnavailable
from registers.sync_lock import FullSyncBusy, backoff_cap_seconds
from sorcha_site import metrics
from tasks import startup
from tasks.schedule import PEERS_GOSSIP_ROUND, PEERS_SAMPLE_POOL

logger = logging.getLogger(__name__)

# Read once, when the worker loads its tasks: RESYNC_BACKOFF_MAX in whole seconds (Celery's unit).
BACKOFF_CAP = backoff_cap_seconds()


@shared_task(
    name=task_names.FLUSH_PUSHES,
    # Redis (where the pending changes wait) briefly unreachable is as transient as the Peer Service.
    autoretry_for=(PeerServiceUnavailable, OperationalError, redis.RedisError),
    retry_backoff=True,
    retry_backoff_max=BACKOFF_CAP,
    retry_jitter=True,
    # Bounded by time, not by count: after one ADVERTISEMENT_TTL the periodic full sync owns the changes.
    max_retries=None,
    throws=(PeerServiceRejected,),
)
def flush_pushes(chain: str, requested_at: float) -> dict[str, int] | None:
    """The push of every register changed within a coalescing window (scheduled by the first change)."""
    waited = time.time() - requested_at
    if waited > settings.ADVERTISEMENT_TTL:
        logger.warning(
            "event=push_abandoned chain=%s waited_s=%.1f (the changes wait in the outbox for the next change's "
            "flush or the beat's check)",
            chain,
            waited,
        )
        pushes.release(chain)
        return None
    return pushes.flush(chain).counts


class FullSyncTask(Task):
    """Releases the startup claim when the sync ends, successfully or for good."""

    def on_success(self, retval: Any, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        startup.release_claim(kwargs.get("startup_claim"))

    def on_failure(
        self, exc: Exception, task_id: str, args: tuple[Any, ...], kwargs: dict[str, Any], einfo: ExceptionInfo
    ) -> None:
        startup.release_claim(kwargs.get("startup_claim"))


@shared_task(
    base=FullSyncTask,
    name=task_names.FULL_SYNC,
    # A database busy for a moment (SQLite's lock, a PostgreSQL failover) is as transient as the Peer Service.
    autoretry_for=(PeerServiceUnavailable, FullSyncBusy, OperationalError),
    retry_backoff=True,
    retry_backoff_max=BACKOFF_CAP,
    retry_jitter=True,
    max_retries=None,  # until it succeeds; a periodic run's retries end with its `expires`
    throws=(PeerServiceRejected,),
)
def full_sync(reason: str = "periodic", startup_claim: str | None = None) -> dict[str, int] | None:
    startup.renew_claim(startup_claim)
    try:
        result = advertising.full_sync(reason, will_retry=True, heartbeat=partial(startup.renew_claim, startup_claim))
    except FullSyncBusy:
        if reason == "periodic":
            logger.info("event=full_sync_skipped reason=periodic cause=another_full_sync_running")
            return None
        raise  # a startup or manual sync runs after the one in progress
    return result.counts


@task_retry.connect
def note_full_sync_retry(sender: Task | None = None, request: Any = None, reason: Any = None, **_: Any) -> None:
    """Record when a failed full sync tries again, and keep its startup claim for that long."""
    if sender is not None and sender.name == task_names.FLUSH_PUSHES:
        metrics.record_push_retry()
    if sender is None or sender.name != task_names.FULL_SYNC:
        return
    when = getattr(reason, "when", None)  # the Retry's countdown in seconds, or its eta
    if isinstance(getattr(reason, "exc", None), PeerServiceUnavailable) and when is not None:
        at = when if isinstance(when, datetime) else timezone.now() + timedelta(seconds=float(when))
        sync_state.record_next_retry(at)
    startup.renew_claim((request.kwargs or {}).get("startup_claim") if request is not None else None)


@shared_task(name=task_names.CHECK_PUSHES, ignore_result=True)
def check_pushes() -> str | None:
    """The beat's check for changes whose flush was lost on the way (see pushes.flush_overdue)."""
    try:
        return pushes.flush_overdue()
    except BROKER_ERRORS as exc:
        logger.info("event=push_check_skipped error=%r (the next check tries again)", exc)
        return None


@shared_task(name=PEERS_GOSSIP_ROUND, ignore_result=True)
def gossip_round() -> dict[str, int]:
    """The periodic round, started a little after its tick (jitter) so nodes do not gossip in lockstep."""
    from peers.gossip import rounds

    time.sleep(random.uniform(0, min(settings.GOSSIP_INTERVAL * 0.1, 10.0)))  # noqa: S311 - jitter
    return rounds.gossip_round()


@shared_task(name=PEERS_SAMPLE_POOL, ignore_result=True)
def sample_pool() -> dict[str, int]:
    """The beat's minute sample of the pool's size (local, remote), for the admin's Sync Status chart."""
    from peers import history

    sample = history.sample_pool()
    return {"local": sample.local, "remote": sample.remote}
