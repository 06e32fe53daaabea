"""The full sync (FR-006): the Register Service's complete set of public registers, pushed to the Peer
Service with `fullSync` (mark-and-sweep on the Peer side), on worker start and periodically.

When the Peer Service may still hold this node's set, the sync sends a digest first — pages of
`(registerId, sourceUpdatedAt)` — and then only the registers it says it needs; otherwise (or to an
original Sorcha Peer Service, which has no digest) every public register, in full. Items are read
by `registers.reads` and encoded in their one wire form by `registers.wire`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.utils import timezone

from registers import sync_history, sync_state
from registers.peer_client import PeerServiceClient, PeerServiceError, PeerServiceRejected, PeerServiceUnavailable
from registers.reads import needed_advertisements, public_advertisements, public_digest
from registers.sync_lock import exclusive_full_sync
from registers.wire import PEER_COUNTS, PlannedAdvertisement, bulk_body, bulk_chunks, digest_body, moment
from sorcha_site import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")


@dataclass
class FullSyncResult:
    snapshot_at: datetime
    registers_pushed: int = 0
    requests: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PEER_COUNTS, 0))

    @property
    def changed(self) -> bool:
        return any(self.counts[name] for name in ("added", "updated", "removed", "held"))

    def add(self, answer: Mapping[str, Any]) -> None:
        """One more request answered: its counts add up."""
        self.requests += 1
        for name in PEER_COUNTS:
            self.counts[name] += int(answer.get(name, 0))

    def summary(self) -> str:
        counts = " ".join(f"{name}={self.counts[name]}" for name in PEER_COUNTS if name != "processed")
        return f"registers={self.registers_pushed} requests={self.requests} {counts}"


def full_sync_plan() -> Iterator[list[PlannedAdvertisement]]:
    """The requests of a full sync, sized to the Peer Service's limits on items and body bytes."""
    return bulk_chunks(public_advertisements())


def with_last(items: Iterable[T]) -> Iterator[tuple[T, bool]]:
    """Each item with whether it is the last one (looks one item ahead)."""
    iterator = iter(items)
    try:
        current = next(iterator)
    except StopIteration:
        return
    for following in iterator:
        yield current, False
        current = following
    yield current, True


def full_sync(
    reason: str,
    *,
    will_retry: bool = False,
    retried: tuple[type[Exception], ...] = (PeerServiceUnavailable,),
    wait_for_running: float = 0.0,
    heartbeat: Callable[[], None] | None = None,
    client: PeerServiceClient | None = None,
) -> FullSyncResult:
    """Push the complete set of public registers with `fullSync` (mark-and-sweep on the Peer side).

    `will_retry`: the caller retries the `retried` errors (by default: the Peer Service unavailable);
    such a failure is recorded as `retrying`.
    `wait_for_running`: seconds to wait for another full sync of this node before FullSyncBusy.
    `heartbeat`: called before each request (a caller's lease renewal).
    """
    client = client or PeerServiceClient.from_settings()
    with exclusive_full_sync(wait=wait_for_running) as renew_lease:
        # The snapshot is taken after the lease (so it is newer than any sync before ours) and before
        # the database is read: a register changed after it goes with a flush of pushes and survives the sweep.
        # The margin covers transactions still open during the read: their updated_at is already
        # set (before the commit), so it must count as after the snapshot.
        snapshot_at = timezone.now() - timedelta(seconds=settings.FULL_SYNC_SNAPSHOT_MARGIN)
        sync_state.record_attempt(reason)
        logger.log(
            _start_level(reason), "event=full_sync_started reason=%s snapshot_at=%s", reason, moment(snapshot_at)
        )

        def beat() -> None:
            renew_lease()
            if heartbeat is not None:
                heartbeat()

        started, started_at = time.monotonic(), timezone.now()
        try:
            result = _send_full_set(client, snapshot_at, beat)
        except Exception as exc:
            retrying = will_retry and isinstance(exc, retried)
            sync_state.record_failure(exc, will_retry=retrying)
            sync_history.record_failure(reason, started_at, time.monotonic() - started, exc, will_retry=retrying)
            metrics.record_full_sync(reason, "retrying" if retrying else "failed", time.monotonic() - started)
            if isinstance(exc, PeerServiceError):
                logger.log(
                    logging.WARNING if retrying else logging.ERROR,
                    "event=full_sync_failed reason=%s will_retry=%s error=%r",
                    reason,
                    str(retrying).lower(),
                    str(exc),
                )
            raise
    duration = time.monotonic() - started
    sync_state.record_success(result.registers_pushed, result.counts)
    sync_history.record_success(reason, started_at, duration, result.registers_pushed, result.counts)
    metrics.record_full_sync(reason, "success", duration)
    logger.log(
        logging.INFO if result.changed or reason != "periodic" else logging.DEBUG,
        "event=full_sync_succeeded reason=%s %s",
        reason,
        result.summary(),
    )
    return result


def _start_level(reason: str) -> int:
    # Startup and manual syncs are events an operator looks for; the periodic one is routine.
    return logging.DEBUG if reason == "periodic" else logging.INFO


# Peer Services (by base URL) that answered 404 or 405 to a digest: an original Sorcha one, sent plain full syncs.
_without_digest: set[str] = set()
_NO_DIGEST_STATUSES = frozenset({404, 405})


def _send_full_set(client: PeerServiceClient, snapshot_at: datetime, beat: Callable[[], None]) -> FullSyncResult:
    """By digest when the Peer Service may hold our set; in full otherwise.

    With no full sync succeeding for one ADVERTISEMENT_TTL (or ever), whatever a Peer Service held
    of this node's set has expired: a digest would only come back asking for all of it.
    """
    recent = sync_state.succeeded_since(timezone.now() - timedelta(seconds=settings.ADVERTISEMENT_TTL))
    if recent and client.base_url not in _without_digest:
        try:
            return _send_by_digest(client, snapshot_at, beat)
        except PeerServiceRejected as exc:
            if exc.status not in _NO_DIGEST_STATUSES:
                raise
            _without_digest.add(client.base_url)
            logger.warning("event=full_sync_digest_unsupported peer_service=%s action=plain", client.base_url)
    return _send_plain(client, snapshot_at, beat)


def in_turn(
    bodies: Iterable[bytes], post: Callable[[bytes], dict[str, Any]], beat: Callable[[], None]
) -> Iterator[dict[str, Any]]:
    """Each body posted in order, one request at a time, while the next one is being read and encoded:
    this process's database read and encoding overlap the Peer Service's work on the request before.
    The answers come in order; the first failure ends it (the bodies after it are never sent)."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="full-sync-post") as poster:
        pending: Future[dict[str, Any]] | None = None
        for body in bodies:
            if pending is not None:
                yield pending.result()
            beat()
            pending = poster.submit(post, body)
        if pending is not None:
            yield pending.result()


def _send_plain(client: PeerServiceClient, snapshot_at: datetime, beat: Callable[[], None]) -> FullSyncResult:
    """FR-006 as original Sorcha Peer Services take it: every public register, in full."""
    result = FullSyncResult(snapshot_at)
    stamp = moment(snapshot_at)
    listed = 0

    def bodies() -> Iterator[bytes]:
        nonlocal listed
        for chunk, last in with_last(full_sync_plan()):
            listed += len(chunk)
            yield bulk_body(chunk, full_sync=last, snapshot_at=stamp, total=listed if last else None)

    for answer in in_turn(bodies(), client.bulk_advertise, beat):
        result.add(answer)
    result.registers_pushed = listed
    return result


def _send_by_digest(client: PeerServiceClient, snapshot_at: datetime, beat: Callable[[], None]) -> FullSyncResult:
    """A full sync where little changed costs a comparison: pages of `(registerId, sourceUpdatedAt)` first,
    then only the registers the Peer Service says it needs, in full (their last request sweeps)."""
    result = FullSyncResult(snapshot_at)
    stamp = moment(snapshot_at)
    digest = public_digest()
    total = len(digest)
    size = settings.SORCHA_DIGEST_MAX_ITEMS
    pages = [digest[start : start + size] for start in range(0, total or 1, size)]  # always one, maybe empty
    needed: list[str] = []
    answer: dict[str, Any] = {}
    for page, last in with_last(pages):
        beat()
        answer = client.reconcile(digest_body(page, stamp, final=last, total=total if last else None))
        result.add(answer)
        needed.extend(str(register_id) for register_id in answer.get("needed", ()))
    result.registers_pushed = total
    if answer.get("complete"):
        return result
    plan = bulk_chunks(needed_advertisements(needed, total))
    bodies = (
        bulk_body(chunk, full_sync=last, snapshot_at=stamp, total=total if last else None)
        for chunk, last in with_last(plan)
    )
    for bulk_answer in in_turn(bodies, client.bulk_advertise, beat):
        result.add(bulk_answer)
    return result
