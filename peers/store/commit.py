"""The one path every write to the pool takes, and how a process follows everyone else's.

`Committer.commit` takes the plans `decide` made and, for each, makes one call of `commit.lua`:
Redis applies the writes conditionally, appends an entry to the change log, and replies with
the state of every key it changed. The writer's mirror takes that reply, exactly as another
process's mirror takes the same keys when it follows the log entry (`follow`): so after a write
has answered, every process that has followed the log serves the same pool, `lastSeen` included.

While Redis is down (the breaker is open) a plan is journaled and the mirror takes the state the
plan expects; when Redis is back, `recover` replays the journal, writes back what the mirror
holds (each write conditional) and reads the pool again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson
import redis

from peers.store import decide
from peers.store.decide import Plan
from peers.store.follow import ORIGIN, Verdict, verdict
from peers.store.mirror import Mirror
from peers.store.model import BulkResult, StaleFullSync
from peers.store.recovery import Breaker, Journal, write_back_ops
from peers.store.redis_io import CommitReply, LogEntry, PoolRead, RedisIO

logger = logging.getLogger(__name__)

# Plans sent ahead of the one whose reply is being taken: Redis applies the next while this process
# takes the last one's reply into its mirror.
_IN_FLIGHT = 2
# How long a read during a bulk write waits at most for a commit's reply to arrive (it is ms away)
# before it waits for the store instead.
_LANDING_WAIT_S = 1.0


@dataclass(slots=True)
class Prefetch:
    """What following the log from `position` reads, read without holding the store (`prefetch`)."""

    position: bytes
    entries: list[LogEntry]
    fetched: list[decide.KeyState]
    complete: bool  # the entries reach the head the read saw


@dataclass(slots=True)
class Outcome:
    """What Redis refused of a commit that the caller must act on."""

    missing: list[str] = field(default_factory=list)  # refreshed ids Redis no longer held
    refused_records: int = 0  # full-sync records refused: a newer full sync was recorded meanwhile


class Committer:
    """Carries plans to Redis and keeps this process's mirror where the change log says."""

    def __init__(self, io: RedisIO, mirror: Mirror, breaker: Breaker, journal: Journal, log_ttl_ms: int) -> None:
        self.io = io
        self.mirror = mirror
        self.breaker = breaker
        self.journal = journal
        self.log_ttl_ms = log_ttl_ms
        self.position = ORIGIN  # the last log entry the mirror holds
        # While a bulk write holds the store (`begin_bulk` to `end_bulk`): each log entry of its commits
        # and the entry before it, taken as each reply arrives, before the mirror takes it in; each
        # arrival (and the bulk's end) is announced on `_landing`.
        self._landed: dict[bytes, bytes] | None = None
        self._landing = threading.Condition()
        self.committing = False  # a commit is under way: the log's newest entries may be its own
        self._sender: ThreadPoolExecutor | None = None

    def close(self) -> None:
        if self._sender is not None:
            self._sender.shutdown(wait=True)

    # ------------------------------------------------------------------ writing
    def commit(self, plans: Iterable[Plan], now_ms: int, result: BulkResult) -> Outcome:
        """Apply plans in order (one script call each, the next sent while a reply is taken in).

        Counts go into `result`. Raises StaleFullSync when a guard finds a newer full sync
        recorded (nothing of that plan applied).
        """
        outcome = Outcome()
        in_flight: deque[tuple[Plan, Future[CommitReply] | None]] = deque()
        behind, self.committing = False, True
        try:
            for plan in plans:
                in_flight.append((plan, self._send(plan, now_ms)))
                while len(in_flight) > _IN_FLIGHT:
                    behind |= self._take(*in_flight.popleft(), now_ms, result, outcome)
            while in_flight:
                behind |= self._take(*in_flight.popleft(), now_ms, result, outcome)
        finally:
            self.committing = False
            for _, pending in in_flight:  # a stale guard ended the commit: the rest are not taken in
                if pending is not None:
                    pending.cancel()
        if behind:
            self.guarded(self.follow)
        return outcome

    def _send(self, plan: Plan, now_ms: int) -> Future[CommitReply] | None:
        if self.breaker.open:
            return None
        if self._sender is None:
            self._sender = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"store-commit-{self.io.keys.prefix}")
        return self._sender.submit(self._commit_one, now_ms, plan.ops.encode())

    def _commit_one(self, now_ms: int, batch: bytes) -> CommitReply:
        reply = self.io.commit(now_ms, self.log_ttl_ms, batch)
        with self._landing:
            landed = self._landed
            if landed is not None and reply.entry:
                landed[reply.entry] = reply.previous
                self._landing.notify_all()
        return reply

    def begin_bulk(self) -> bytes:
        """Note the replies of a bulk write's commits from now on (`_landed`); the log entry it begins at."""
        with self._landing:
            self._landed = {}
        return self.position

    def end_bulk(self) -> None:
        with self._landing:
            self._landed = None
            self._landing.notify_all()

    def only_own_since(self, start: bytes) -> bool:
        """Whether every log entry after `start`, up to the log's head now, is one of this bulk write's
        commits: no other process has written since. One round trip; while Redis is down (or fails
        here), no process can write: true.

        The head is often a commit Redis has taken whose reply is still on its way (the next call is
        sent before the last reply is taken in): its entry is waited for, a few milliseconds, not the
        whole write. An entry that never lands is another process's: false once the bulk ends.
        """
        if self.breaker.open:
            return True
        try:
            head = self.io.head()
        except redis.RedisError:
            return True
        with self._landing:
            landed = self._landed  # this bulk's: the wait ends with it, not with a later one
            while landed is not None and self._landed is landed:
                at = head
                while at != start and at in landed:
                    at = landed[at]
                if at == start:
                    return True
                if not self._landing.wait(_LANDING_WAIT_S):
                    break
        return False

    def _take(
        self, plan: Plan, pending: Future[CommitReply] | None, now_ms: int, result: BulkResult, outcome: Outcome
    ) -> bool:
        """Take one plan's reply into the mirror; True when other processes' entries came before it."""
        reply = None
        if pending is not None and not self.breaker.open:
            try:
                reply = pending.result()
            except redis.RedisError as exc:
                self.trip(exc)
        if reply is None:  # Redis is down: keep the plan for later, serve what it expects meanwhile
            self.journal.append(now_ms, plan.ops.ops)
            self.mirror.apply(plan.expected)
            if plan.refreshed:
                self.mirror.refresh(plan.refreshed, plan.refreshed_until)
            decide.tally(plan.ops.expected, None, result)
            return False
        if reply.status == "stale":
            raise StaleFullSync(int(plan.ops.ops[0][2]), int(reply.stored))
        self.mirror.apply(_states(reply.states), encoded_here=True)
        if reply.refreshed:
            self.mirror.refresh(reply.refreshed, reply.refreshed_until)
        for position in decide.tally(plan.ops.expected, reply.results, result):
            if position < len(plan.refreshed):
                outcome.missing.append(plan.refreshed[position])
            else:
                outcome.refused_records += 1
        if not reply.entry:
            # Nothing changed. A write Redis refused met a newer state another process wrote: follow it now,
            # so the writer answers with what Redis holds.
            return b"0" in reply.results
        if reply.previous == self.position:
            self.position = reply.entry
            return False
        return True  # other processes wrote in between: their entries are followed after this commit

    # ------------------------------------------------------------------ following
    def follow(self) -> None:
        """Apply what other processes committed since this one last looked (one round trip when nothing)."""
        if self.io.head() == self.position:
            return
        self.catch_up()

    def catch_up(self) -> None:
        while True:
            entries, first, head = self.io.entries_after(self.position)
            decision = verdict(self.position, entries, first, head)
            if decision is Verdict.CURRENT:
                return
            if decision is Verdict.RELOAD:
                logger.warning("event=store_log_behind prefix=%s action=reload", self.io.keys.prefix)
                self.reload(self.io.read_pool())
                return
            if decision is Verdict.RECOVER:
                logger.warning("event=store_log_lost prefix=%s action=write_back", self.io.keys.prefix)
                self.recover()
                return
            self._apply(entries)
            if len(entries) < 500:
                return

    def _apply(self, entries: list[LogEntry]) -> None:
        self._take_in(entries, self._fetch_for(entries))

    def _fetch_for(self, entries: list[LogEntry]) -> list[decide.KeyState]:
        """The current state of every key the entries name."""
        keys: dict[str, None] = {}
        for entry in entries:
            keys.update(dict.fromkeys(entry.keys))
        return self.io.fetch(list(keys)) if keys else []

    def _take_in(self, entries: list[LogEntry], fetched: list[decide.KeyState]) -> None:
        """Entries in order: their refreshes, then the current state of every key they changed."""
        for entry in entries:
            if entry.refreshed:
                self.mirror.refresh(entry.refreshed, entry.refreshed_until)
        if fetched:
            self.mirror.apply(fetched)
        self.position = entries[-1].id

    def prefetch(self) -> Prefetch | None:
        """What `follow` would read, read without the store held, so that no one waits on Redis behind
        it; None when it must be followed under the store: the log went back (or was trimmed past
        this process), Redis is down, or this read failed (the follow under the store meets the
        error again and opens the breaker: the breaker only moves under the store)."""
        if self.breaker.open:
            return None
        position = self.position
        try:
            if self.io.head() == position:
                return Prefetch(position, [], [], True)
            entries, first, head = self.io.entries_after(position)
            if verdict(position, entries, first, head) is not Verdict.APPLY:
                return None
            return Prefetch(position, entries, self._fetch_for(entries), entries[-1].id == head)
        except redis.RedisError as exc:
            logger.warning("event=store_prefetch_failed prefix=%s error=%r", self.io.keys.prefix, exc)
            return None

    def take_prefetch(self, prefetch: Prefetch | None) -> bool:
        """Under the store: apply a prefetch read since this process last moved; whether the mirror now
        holds every entry up to the head the read saw (else `follow` is still owed)."""
        if prefetch is None or prefetch.position != self.position or self.breaker.open:
            return False  # (this process wrote or followed since: what was read may be older than the mirror)
        if prefetch.entries:
            self._take_in(prefetch.entries, prefetch.fetched)
        return prefetch.complete

    # ------------------------------------------------------------------ loading and recovering
    def reload(self, read: PoolRead, initial: bool = False) -> None:
        """Hold the pool exactly as Redis does (each page taken in while the next is read)."""
        self.position = read.head()
        previous = None if initial else _snapshot(self.mirror)
        self.mirror.load(read.pages(), previous)
        logger.info(
            "event=store_loaded prefix=%s local=%d remote=%d initial=%s",
            self.io.keys.prefix,
            len(self.mirror.local),
            sum(len(entries) for entries in self.mirror.remote.values()),
            initial,
        )

    def recover(self) -> None:
        """Replay the journal, write back the live mirror (each write conditional), read the pool again."""
        batches = self.journal.take()
        replayed = 0
        try:
            for now_ms, journaled in batches:
                self.io.commit(now_ms, self.log_ttl_ms, orjson.dumps(journaled))
                replayed += 1
            now = time.time()
            mirror = self.mirror
            ops = write_back_ops(
                self.io.keys,
                mirror.local,
                mirror.remote,
                mirror.tombstones,
                mirror.peer_tombstones,
                mirror.full_sync,
                self.log_ttl_ms,
                now,
            )
            for part in ops.chunks(1_000):
                self.io.commit(int(now * 1000), self.log_ttl_ms, part.encode())
        except redis.RedisError:
            self.journal.put_back(batches[replayed:])  # what Redis already took is not replayed twice
            raise
        self.reload(self.io.read_pool())

    def trip(self, exc: Exception) -> None:
        if self.breaker.trip(exc):
            logger.warning("event=store_degraded prefix=%s error=%r", self.io.keys.prefix, exc)

    def guarded(self, call: Callable[[], None]) -> None:
        """Run a Redis interaction unless the breaker is open; a failure opens it."""
        if self.breaker.open:
            return
        try:
            call()
        except redis.RedisError as exc:
            self.trip(exc)

    def try_recover(self) -> None:
        """While degraded: once the cool-down has passed, see whether Redis is back, and recover."""
        if not self.breaker.may_probe():
            return
        try:
            self.io.client.ping()
            self.recover()
        except redis.RedisError as exc:
            self.trip(exc)
            return
        logger.info("event=store_recovered prefix=%s degraded_seconds=%.1f", self.io.keys.prefix, self.breaker.close())


def _states(flat: list[bytes]) -> Iterable[decide.KeyState]:
    """commit.lua's [key, value, expiry ms, ...] as key states."""
    gone = decide.GONE
    for key, value, expiry in zip(flat[0::3], flat[1::3], flat[2::3], strict=True):
        yield key.decode(), value.decode(), int(expiry) if value else gone


def _snapshot(mirror: Mirror) -> Mirror:
    """What the mirror held before a reload (its entries keep their verification if unchanged)."""
    previous = Mirror(mirror.keys, mirror.ttl)
    previous.local, previous.remote = mirror.local, mirror.remote
    return previous
