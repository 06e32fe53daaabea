"""Leases in Redis that coordinate full syncs between the processes of a node.

A lease is a key holding its owner's token with a short expiry. The owner renews it
while it works and deletes it when it is done; a crashed owner's lease simply expires.
Renew and release compare the token first, so nobody ever frees someone else's lease.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import redis
from django.conf import settings

from sorcha_site import redis_connections

logger = logging.getLogger(__name__)

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""
_WAIT_STEP = 0.1


class FullSyncBusy(Exception):
    """Another full sync of this node is running."""


def full_sync_lease_seconds() -> float:
    """Long enough for one request to the Peer Service (renewed before each one), plus a margin that
    scales with the reconcile interval: a worker killed mid-sync must not hold reconciliation off for
    much longer than the advertisements it would refresh live."""
    margin = min(30.0, settings.RECONCILE_INTERVAL)
    return settings.PEER_SERVICE_CONNECT_TIMEOUT + settings.PEER_SERVICE_READ_TIMEOUT + margin


def backoff_cap_seconds() -> int:
    """Celery's retry backoff counts whole seconds; a fractional RESYNC_BACKOFF_MAX rounds up."""
    return max(1, math.ceil(settings.RESYNC_BACKOFF_MAX))


class Lease:
    def __init__(self, name: str, client: redis.Redis | None = None) -> None:
        self.key = f"{settings.REDIS_KEY_PREFIX}:registers:{name}"
        self.client = client or redis_connections.connection(redis_connections.COORDINATION)

    def acquire(self, token: str, seconds: float) -> bool:
        return bool(self.client.set(self.key, token, nx=True, px=_millis(seconds)))

    def renew(self, token: str, seconds: float) -> bool:
        return bool(self.client.eval(_RENEW, 1, self.key, token, _millis(seconds)))

    def release(self, token: str) -> bool:
        return bool(self.client.eval(_RELEASE, 1, self.key, token))

    def holder(self) -> str | None:
        raw = self.client.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else None


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))


@contextmanager
def exclusive_full_sync(wait: float = 0.0) -> Iterator[Callable[[], None]]:
    """Hold the node's full-sync lease while the block runs; yields a function that renews it.

    Waits up to `wait` seconds for a running full sync to finish, then raises FullSyncBusy.
    If Redis cannot be reached the sync runs unguarded: the Peer Service's ordering rules keep
    overlapping syncs correct (the older one is refused as stale), the lease only saves work.
    """
    lease = Lease("full-sync")
    token = uuid.uuid4().hex
    seconds = full_sync_lease_seconds()
    try:
        acquired: bool | None = _acquire_waiting(lease, token, seconds, wait)
    except redis.RedisError as exc:
        logger.warning("event=full_sync_lease_unavailable error=%r action=running_unguarded", exc)
        acquired = None
    if acquired is None:
        yield lambda: None
        return
    if not acquired:
        raise FullSyncBusy(f"another full sync of this node is running (lease {lease.key})")

    def renew() -> None:
        try:
            lease.renew(token, seconds)
        except redis.RedisError as exc:
            logger.warning("event=full_sync_lease_renew_failed error=%r", exc)

    try:
        yield renew
    finally:
        try:
            lease.release(token)
        except redis.RedisError as exc:
            logger.warning("event=full_sync_lease_release_failed error=%r (it expires by itself)", exc)


def _acquire_waiting(lease: Lease, token: str, seconds: float, wait: float) -> bool:
    deadline = time.monotonic() + wait
    while True:
        if lease.acquire(token, seconds):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(_WAIT_STEP)
