"""Registers changed since the last push, kept in Redis until a flush carries them to the Peer Service.

Three keys under the node's prefix:

- `pending` — a set of the ids of registers changed (created, flipped, edited while public);
- `deleted` — a hash of deleted registers' ids to their deletion time (the removal must carry it);
- `flush` — held while a flush is scheduled, running or retrying; its value names the flush *chain*
  (one task and its retries and re-arms), its expiry only frees a chain whose task was lost.

Every step is one script, so a change either lands before a flush takes the pending ids (and
travels with them) or finds the key free or the flush re-arming (and travels with the next one):

- `note` records a change and claims `flush` if it is free (then the caller schedules the flush);
- `take` hands the pending ids to the running flush and empties them;
- `put_back` returns undelivered ids (the flush retries them with whatever was added meanwhile);
- `finish` ends a flush: it keeps `flush` and asks for another one if changes arrived meanwhile,
  else frees it. A chain that finds another chain holding `flush` ends (that one carries the rest).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import redis
from django.conf import settings

from sorcha_site import redis_connections

_NOTE = """
if ARGV[2] == '' then redis.call('sadd', KEYS[1], ARGV[1]) else redis.call('hset', KEYS[2], ARGV[1], ARGV[2]) end
if redis.call('set', KEYS[3], ARGV[3], 'NX', 'PX', ARGV[4]) then return 1 end
return 0
"""
_TAKE = """
redis.call('set', KEYS[3], ARGV[1], 'PX', ARGV[2])
local ids = redis.call('smembers', KEYS[1])
local deleted = redis.call('hgetall', KEYS[2])
redis.call('del', KEYS[1], KEYS[2])
return {ids, deleted}
"""
_FINISH = """
local holder = redis.call('get', KEYS[3])
if holder and holder ~= ARGV[1] then return 0 end
if redis.call('scard', KEYS[1]) > 0 or redis.call('hlen', KEYS[2]) > 0 then
  redis.call('set', KEYS[3], ARGV[1], 'PX', ARGV[2])
  return 1
end
redis.call('del', KEYS[3])
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0
"""


@dataclass
class TakenChanges:
    """What one flush carries: changed registers, and the deletion time of those deleted."""

    register_ids: set[str] = field(default_factory=set)
    deleted_at: dict[str, str] = field(default_factory=dict)  # id -> ISO-8601 deletion time

    def all_ids(self) -> set[str]:
        return self.register_ids | self.deleted_at.keys()

    def __len__(self) -> int:
        return len(self.all_ids())


class PendingPushes:
    def __init__(self, client: redis.Redis | None = None, prefix: str | None = None) -> None:
        self.client = client or redis_connections.connection(redis_connections.COORDINATION)
        # Named like the node's queues (fixed when the settings load): the flush task that reads these
        # keys is consumed from those queues, by workers that share the node's REDIS_KEY_PREFIX.
        base = f"{prefix or settings.CELERY_TASK_DEFAULT_QUEUE.removesuffix('.default')}:registers:push"
        self.keys = (f"{base}:pending", f"{base}:deleted", f"{base}:flush")

    def note(self, register_id: str, deleted_at: datetime | None, chain: str, hold_seconds: float) -> bool:
        """Record a change; True when it claimed the flush for `chain` (the caller then schedules it)."""
        stamp = deleted_at.isoformat(timespec="microseconds") if deleted_at is not None else ""
        return bool(self.client.eval(_NOTE, 3, *self.keys, register_id, stamp, chain, _millis(hold_seconds)))

    def take(self, chain: str, hold_seconds: float) -> TakenChanges:
        """Empty the pending changes into the running flush of `chain` (which holds `flush` meanwhile)."""
        ids, deleted = self.client.eval(_TAKE, 3, *self.keys, chain, _millis(hold_seconds))
        pairs = [value.decode() for value in deleted]
        return TakenChanges({value.decode() for value in ids}, dict(zip(pairs[::2], pairs[1::2], strict=True)))

    def put_back(self, taken: TakenChanges, chain: str, hold_seconds: float) -> None:
        """Return undelivered changes; `chain` keeps `flush` while it waits to retry."""
        pending, deleted, flush = self.keys
        with self.client.pipeline(transaction=True) as pipe:
            if taken.register_ids:
                pipe.sadd(pending, *taken.register_ids)
            for register_id, stamp in taken.deleted_at.items():
                pipe.hsetnx(deleted, register_id, stamp)
            pipe.set(flush, chain, px=_millis(hold_seconds))
            pipe.execute()

    def finish(self, chain: str, hold_seconds: float) -> bool:
        """End a flush of `chain`; True when changes are waiting and `chain` must schedule another."""
        return bool(self.client.eval(_FINISH, 3, *self.keys, chain, _millis(hold_seconds)))

    def hold(self, chain: str, hold_seconds: float) -> None:
        """Keep `flush` for the running flush of `chain` a while longer (before each of its requests)."""
        self.client.set(self.keys[2], chain, px=_millis(hold_seconds))

    def release(self, chain: str) -> None:
        """Free `flush` if `chain` holds it (its flush could not be scheduled)."""
        self.client.eval(_RELEASE, 1, self.keys[2], chain)

    def waiting(self) -> TakenChanges:
        """The pending changes, left in place (for tests and operators)."""
        pending, deleted, _ = self.keys
        ids: set[bytes] = self.client.smembers(pending)  # type: ignore[assignment]
        stamps: dict[bytes, bytes] = self.client.hgetall(deleted)  # type: ignore[assignment]
        return TakenChanges({value.decode() for value in ids}, {k.decode(): v.decode() for k, v in stamps.items()})

    def clear(self) -> None:
        self.client.delete(*self.keys)


def _millis(seconds: float) -> int:
    return max(1, int(seconds * 1000))
