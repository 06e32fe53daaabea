"""Registers changed since the last push: an outbox in the database, drained by coalesced flushes.

A change is written here *in the transaction that makes it* (`record`, from the model signals), so
it is exactly as durable as the register itself: losing Redis, the broker or a worker never loses a
push, it only delays it. One row per register: the version counts its changes, `deleted_at` is the
deletion time a removal must carry.

A flush takes a snapshot of the rows, sends the registers' current state, then deletes only the rows
whose version it took (a change made meanwhile keeps its row for the next flush).

Flushes are coalesced through one Redis key, `flush`, holding the *chain* that owns it (a flush
task, its retries, and the flushes it re-arms while changes keep arriving). The key is only a
scheduling hint: if Redis loses it, a second chain may run and both send the current state. The
beat's check (`check_pushes`) schedules a flush for rows that waited longer than a scheduled flush
should have, whatever was lost on the way (a broker message, a failed-over Redis, a killed worker).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings
from django.db import IntegrityError, models, transaction
from django.db.models import F, Q
from django.utils import timezone

from sorcha_site import redis_connections

# Rows of one conditional delete (SQLite bounds the depth of a WHERE clause).
_DELETE_BATCH = 400

_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


class PendingPush(models.Model):
    register_id = models.CharField(max_length=32, primary_key=True)
    # Counts the changes to this register since its row was created (a flush deletes what it took).
    version = models.PositiveBigIntegerField(default=1)
    noted_at = models.DateTimeField(db_index=True)
    # Set for a deleted register: the removal carries it, so an older push cannot bring it back.
    deleted_at = models.DateTimeField(null=True, blank=True)

    def __str__(self) -> str:
        return f"pending push of {self.register_id} (v{self.version})"


@dataclass
class TakenChanges:
    """What one flush carries: changed registers, the version of each, the deletion time of those deleted."""

    versions: dict[str, int] = field(default_factory=dict)
    deleted_at: dict[str, datetime] = field(default_factory=dict)

    def all_ids(self) -> set[str]:
        return set(self.versions)

    def __len__(self) -> int:
        return len(self.versions)


def record(register_id: str, deleted_at: datetime | None = None) -> None:
    """Note a change, in the caller's transaction."""
    now = timezone.now()
    changes = {"version": F("version") + 1, "noted_at": now, "deleted_at": deleted_at}
    if PendingPush.objects.filter(pk=register_id).update(**changes):
        return
    try:
        with transaction.atomic():
            PendingPush.objects.create(register_id=register_id, noted_at=now, deleted_at=deleted_at)
    except IntegrityError:  # another transaction created it meanwhile
        PendingPush.objects.filter(pk=register_id).update(**changes)


def take(limit: int | None = None) -> TakenChanges:
    """A snapshot of the waiting changes, oldest first (left in place until `delivered`)."""
    rows = PendingPush.objects.order_by("noted_at").values_list("register_id", "version", "deleted_at")
    taken = TakenChanges()
    for register_id, version, deleted_at in rows[:limit] if limit else rows:
        taken.versions[register_id] = version
        if deleted_at is not None:
            taken.deleted_at[register_id] = deleted_at
    return taken


def delivered(taken: TakenChanges) -> None:
    """Forget the changes a flush carried, unless the register changed again since it took them."""
    items = list(taken.versions.items())
    for start in range(0, len(items), _DELETE_BATCH):
        batch = items[start : start + _DELETE_BATCH]
        condition = Q()
        for register_id, version in batch:
            condition |= Q(register_id=register_id, version=version)
        PendingPush.objects.filter(condition).delete()


def waiting_since(moment: datetime) -> bool:
    """Whether a change noted before `moment` is still waiting."""
    return PendingPush.objects.filter(noted_at__lt=moment).exists()


def any_waiting() -> bool:
    return PendingPush.objects.exists()


def forget(register_ids: Iterable[str] | None = None) -> None:
    """Drop waiting changes (all of them by default): for tests and operators."""
    rows = PendingPush.objects.all() if register_ids is None else PendingPush.objects.filter(pk__in=list(register_ids))
    rows.delete()


class FlushKey:
    """The Redis key that lets one chain of flushes at a time run (raises RedisError)."""

    def __init__(self, client: redis.Redis | None = None, prefix: str | None = None) -> None:
        self.client = client or redis_connections.connection(redis_connections.COORDINATION)
        # Named like the node's queues: the flush task is consumed from those, by workers sharing the prefix.
        base = prefix or settings.CELERY_TASK_DEFAULT_QUEUE.removesuffix(".default")
        self.key = f"{base}:registers:push:flush"

    def claim(self, chain: str, hold_seconds: float) -> bool:
        """True when `chain` took the key (the caller schedules its flush)."""
        return bool(self.client.set(self.key, chain, nx=True, px=_millis(hold_seconds)))

    def hold(self, chain: str, hold_seconds: float) -> None:
        """Keep the key for `chain` a while longer (a running flush, before each request and its retry)."""
        self.client.set(self.key, chain, px=_millis(hold_seconds))

    def release(self, chain: str) -> None:
        """Free the key if `chain` holds it."""
        self.client.eval(_RELEASE, 1, self.key, chain)

    def holder(self) -> str | None:
        raw = self.client.get(self.key)
        return raw.decode() if isinstance(raw, bytes) else None

    def clear(self) -> None:
        self.client.delete(self.key)


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))
