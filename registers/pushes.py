"""The push path, from a register's change to the Peer Service: signal → outbox → flush → re-arm.

1. The model signals see every change that concerns a register's advertisement (created public, the
   flag flipped, an advertised field changed while public, deleted while public) and write it to the
   outbox (`registers.pending_pushes`) *in the change's own transaction*: a change saved is a push owed.
2. After the commit, `request_flush` schedules one flush a `PUSH_COALESCE_WINDOW` from now, unless a
   chain already holds the flush key (`FlushKey`): a burst of changes costs one bulk request per window.
3. The flush (the `flush_pushes` task) takes what waits in the outbox, sends the registers' current
   state (`push_delivery.push_changes`), forgets what it delivered, and re-arms its chain if more arrived.
4. The beat's check (`check_pushes`) schedules a flush for changes that waited longer than a scheduled
   flush should take, whatever lost theirs (a broker message, a failed-over Redis, a killed worker).

A *chain* is the task a change scheduled, its retries, and the flushes it re-arms while changes keep
arriving; one chain at a time holds the key. The key is only a hint (Redis errors on it are logged,
never fatal): the changes wait in the database until a flush has delivered them.

Whatever path changes a register — API, admin form, admin actions, delete selected — goes through
`save()` or `delete()`, so the receivers see it. `QuerySet.update()` bypasses them; the periodic
full sync repairs what such a path changed.
"""

from __future__ import annotations

import logging
import time
import uuid
from datetime import timedelta
from functools import partial
from typing import Any

import redis
from django.conf import settings
from django.db import OperationalError, transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils import timezone

from registers import pending_pushes, push_delivery, task_names
from registers.enqueue import BROKER_ERRORS
from registers.models import Register
from registers.peer_client import PeerServiceClient, PeerServiceRejected, PeerServiceUnavailable
from registers.pending_pushes import FlushKey
from registers.sync_lock import backoff_cap_seconds
from registers.wire import ADVERTISED_FIELDS
from sorcha_site.celery import app

logger = logging.getLogger(__name__)

# The flag first, then what a Peer Service shows about a public register.
STATE_FIELDS = ("advertise", *ADVERTISED_FIELDS)
_BEFORE = "_advertisement_state_before_save"

# After a failed publish, flushes are not scheduled for this long, so a bulk admin action during a
# broker outage does not wait out a connect timeout per register (its changes wait in the outbox).
BROKER_COOLDOWN_SECONDS = 5.0
# A scheduled flush may wait this long behind other tasks of a busy worker before a change starts another.
_QUEUED_MARGIN_SECONDS = 5.0
# Room beyond one request's timeouts before a running flush's hold on the key lapses.
_RUNNING_MARGIN_SECONDS = 5.0
_broker_down_until = 0.0

AdvertisementState = tuple[Any, ...]


# ------------------------------------------------------------------------- the signal receivers
def concerns_advertisement(before: AdvertisementState | None, after: AdvertisementState) -> bool:
    """Created public, the flag flipped, or an advertised field changed while public."""
    advertise = after[0]
    if before is None:
        return bool(advertise)
    return before[0] != advertise or (bool(advertise) and before != after)


def remember_state_before_save(sender: type[Register], instance: Register, raw: bool, **kwargs: Any) -> None:
    if raw:  # loading fixtures: not a change made on this node
        return
    before = Register.objects.filter(pk=instance.pk).values_list(*STATE_FIELDS).first()
    setattr(instance, _BEFORE, before)


def push_after_save(
    sender: type[Register],
    instance: Register,
    created: bool,
    raw: bool,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    if raw:
        return
    before: AdvertisementState | None = instance.__dict__.pop(_BEFORE, None)
    if created:
        before = None
    if before is None or update_fields is None:
        after = tuple(getattr(instance, name) for name in STATE_FIELDS)
    else:
        # Only these fields were written; the others keep what the database held.
        after = tuple(
            getattr(instance, name) if name in update_fields else value
            for name, value in zip(STATE_FIELDS, before, strict=True)
        )
    if concerns_advertisement(before, after):
        pending_pushes.record(instance.pk)
        transaction.on_commit(partial(request_flush, instance.pk), robust=True)


def push_after_delete(sender: type[Register], instance: Register, **kwargs: Any) -> None:
    if instance.advertise:
        # The removal carries the deletion time, so an older push still in flight cannot bring it back.
        pending_pushes.record(instance.pk, timezone.now())
        transaction.on_commit(partial(request_flush, instance.pk), robust=True)


def connect() -> None:
    pre_save.connect(remember_state_before_save, sender=Register, dispatch_uid="registers.remember_state")
    post_save.connect(push_after_save, sender=Register, dispatch_uid="registers.push_after_save")
    post_delete.connect(push_after_delete, sender=Register, dispatch_uid="registers.push_after_delete")


# ------------------------------------------------------------------------- scheduling a flush
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
        release(chain, key)
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


def running_hold_seconds() -> float:
    """A running flush renews its hold before each request: one request's timeouts plus a margin."""
    return settings.PEER_SERVICE_CONNECT_TIMEOUT + settings.PEER_SERVICE_READ_TIMEOUT + _RUNNING_MARGIN_SECONDS


def retry_hold_seconds() -> float:
    """A failed flush holds the key until its retry (at most the backoff cap) has had time to run."""
    return backoff_cap_seconds() + scheduled_hold_seconds()


# ------------------------------------------------------------------------------------ the flush
def flush(chain: str, key: FlushKey | None = None, client: PeerServiceClient | None = None) -> push_delivery.PushResult:
    """Push every waiting change; re-arm the chain if more arrived meanwhile.

    Raises PeerServiceUnavailable or OperationalError with the changes still waiting (the task retries
    with backoff, carrying whatever was added meanwhile too), and the first PeerServiceRejected after
    the others were delivered (a 4xx is permanent: not retried).
    """
    key = key or FlushKey()
    _hold(key, chain, running_hold_seconds())
    taken = pending_pushes.take(settings.SORCHA_BULK_MAX_ITEMS * 10)
    result = push_delivery.PushResult()
    try:
        if taken:
            result = push_delivery.push_changes(
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


def _hold(key: FlushKey, chain: str, seconds: float) -> None:
    try:
        key.hold(chain, seconds)
    except redis.RedisError as exc:
        # Not worth failing a flush over: at worst another chain starts and both send the current state.
        logger.warning("event=push_flush_hold_failed chain=%s error=%r", chain, exc)


# ----------------------------------------------------------------------------------- re-arming
def rearm(chain: str, key: FlushKey) -> None:
    """End this flush; if changes are waiting, schedule the chain's next one a window from now.

    The key is freed before the outbox is read: a change whose own claim found the key still held
    committed before that claim, so this read sees it.
    """
    release(chain, key)
    if not pending_pushes.any_waiting():
        return
    try:
        if not key.claim(chain, scheduled_hold_seconds()):
            return  # another chain took the key: it carries them
    except redis.RedisError as exc:
        logger.warning("event=flush_key_unavailable chain=%s error=%r action=flush_without_key", chain, exc)
    try:
        schedule_flush(chain)
    except BROKER_ERRORS as exc:
        logger.warning("event=push_deferred chain=%s error=%r (the beat's check flushes them)", chain, exc)
        release(chain, key)


def release(chain: str, key: FlushKey | None = None) -> None:
    """Free the flush key without re-arming: waiting changes go with the next change's flush or the check's."""
    try:
        (key or FlushKey()).release(chain)
    except redis.RedisError as exc:
        logger.warning("event=push_flush_release_failed chain=%s error=%r (the key expires by itself)", chain, exc)


# --------------------------------------------------------------------------- the beat's check
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
