"""Telling the Peer Service which registers are public: the registers changed lately (a push, coalesced
into bulk requests) or all of them (a full sync). Every item goes out in one wire form
(`encode_advertisement`, `encode_removal`).

All read the database at the moment they run, so a delayed or repeated call sends the
current truth, never an old one; `sourceUpdatedAt` (the register's `updated_at`) lets the
Peer Service order whatever arrives (ARCHITECTURE §4).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple, TypeVar

import orjson
from django.conf import settings
from django.db import connections
from django.utils import timezone

from registers import sync_history, sync_state
from registers.expressions import EpochMicros, IsoUtc
from registers.models import Register
from registers.peer_client import PeerServiceClient, PeerServiceError, PeerServiceRejected, PeerServiceUnavailable
from registers.sync_lock import exclusive_full_sync
from sorcha_site import metrics

logger = logging.getLogger(__name__)

T = TypeVar("T")

# The fields a Peer Service advertises; a change to one of them while public is worth a push.
ADVERTISED_FIELDS = ("name", "description", "is_full_replica", "latest_version", "latest_docket_version")
PEER_COUNTS = ("processed", "added", "updated", "removed", "unchanged", "held", "stale")
# Room kept in a bulk request for the envelope around the advertisements.
_ENVELOPE_BYTES = 1_024


def moment(value: datetime) -> str:
    """ISO-8601 with microseconds and the zone, as the Peer Service expects (no digits dropped at .000000)."""
    return value.isoformat(timespec="microseconds")


def encode_advertisement(
    register_id: str,
    name: str,
    description: str,
    is_full_replica: bool,
    latest_version: int,
    latest_docket_version: int,
    source_updated_at: str,
) -> bytes:
    """The wire form of a public register's advertisement, as a bulk item; `source_updated_at` is its
    `updated_at` already written as text (by `moment`, or by the database's `IsoUtc`)."""
    return orjson.dumps(
        {
            "registerId": register_id,
            "isPublic": True,
            "name": name,
            "description": description,
            "isFullReplica": bool(is_full_replica),  # SQLite answers 0 or 1
            "latestVersion": latest_version,
            "latestDocketVersion": latest_docket_version,
            "sourceUpdatedAt": source_updated_at,
        }
    )


def encode_removal(register_id: str, source_updated_at: str) -> bytes:
    """The wire form of a removal (a register made private or deleted), as a bulk item."""
    return orjson.dumps({"registerId": register_id, "isPublic": False, "sourceUpdatedAt": source_updated_at})


# ------------------------------------------------------------------------------------- full sync
class PlannedAdvertisement(NamedTuple):
    register_id: str
    name: str
    encoded: bytes


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


def public_advertisements(page_size: int | None = None) -> Iterator[PlannedAdvertisement]:
    """Every public register, encoded, read page by page in primary-key order.

    Each page is one short query (no cursor, and on SQLite no read lock, is held open while the
    Peer Service answers a request), its rows fetched as plain tuples with `sourceUpdatedAt`
    already written as text by the database: no per-row conversion before the encoding.
    """
    page_size = page_size or settings.SORCHA_BULK_MAX_ITEMS
    public = Register.objects.filter(advertise=True).order_by("pk")
    columns = ("id", "name", "description", "is_full_replica", "latest_version", "latest_docket_version")
    last_id = ""
    while True:
        page = public.filter(pk__gt=last_id).values_list(*columns, IsoUtc("updated_at"))[:page_size]
        sql, params = page.query.sql_with_params()
        with connections[page.db].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            planned = [
                PlannedAdvertisement(
                    register_id,
                    name,
                    encode_advertisement(
                        register_id, name, description, is_full_replica, latest_version, latest_docket, updated_at
                    ),
                )
                for register_id, name, description, is_full_replica, latest_version, latest_docket, updated_at in rows
            ]
        yield from planned
        if len(rows) < page_size:
            return
        last_id = rows[-1][0]


def chunked(
    advertisements: Iterable[PlannedAdvertisement], max_items: int, max_bytes: int
) -> Iterator[list[PlannedAdvertisement]]:
    """Requests of at most `max_items` items and `max_bytes` of items; always at least one (maybe empty)."""
    chunk: list[PlannedAdvertisement] = []
    size = 0
    for planned in advertisements:
        if chunk and (len(chunk) >= max_items or size + len(planned.encoded) + 1 > max_bytes):
            yield chunk
            chunk, size = [], 0
        chunk.append(planned)
        size += len(planned.encoded) + 1
    yield chunk


def full_sync_plan() -> Iterator[list[PlannedAdvertisement]]:
    """The requests of a full sync, sized to the Peer Service's limits on items and body bytes."""
    return chunked(
        public_advertisements(),
        max_items=settings.SORCHA_BULK_MAX_ITEMS,
        max_bytes=settings.SORCHA_MAX_BODY_BYTES - _ENVELOPE_BYTES,
    )


def bulk_body(chunk: list[PlannedAdvertisement], full_sync: bool, snapshot_at: str, total: int | None = None) -> bytes:
    """The bulk-advertise body, assembled from items encoded once; the final one of a full sync says
    how many registers the whole sync listed (`total`), so a Peer Service that lost the earlier
    requests' marks refuses to sweep."""
    items = b",".join([planned.encoded for planned in chunk])
    flag = b"true" if full_sync else b"false"
    stamp = orjson.dumps(snapshot_at)
    tail = b"" if total is None else b',"total":' + str(total).encode()
    return b'{"advertisements":[' + items + b'],"fullSync":' + flag + b',"snapshotAt":' + stamp + tail + b"}"


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


def public_digest() -> list[tuple[str, int]]:
    """`(registerId, sourceUpdatedAt in microseconds)` of every public register, in no particular order.

    Two columns of one short query, converted by the database and fetched as plain tuples (no
    per-row conversion): the digest of 100,000 registers reads in about a tenth of the time
    their advertisements take to read and encode.
    """
    queryset = Register.objects.filter(advertise=True).values_list("id", EpochMicros("updated_at"))
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def digest_body(page: list[tuple[str, int]], snapshot_at: str, final: bool, total: int | None) -> bytes:
    body: dict[str, Any] = {
        "snapshotAt": snapshot_at,
        "registerIds": [register_id for register_id, _ in page],
        "sourceUpdatedAt": [stamp for _, stamp in page],
        "final": final,
    }
    if total is not None:
        body["total"] = total
    return orjson.dumps(body)


def needed_advertisements(needed: list[str], listed: int) -> Iterator[PlannedAdvertisement]:
    """The current advertisements of the registers a digest said the Peer Service needs, in full.

    Few: read by id. Many (a Peer Service that lost its store): one pass over the public set is cheaper.
    A register made private or deleted since the digest is left out (its own push removes it).
    """
    wanted = set(needed)
    if len(wanted) * 4 > listed:
        yield from (planned for planned in public_advertisements() if planned.register_id in wanted)
        return
    ids = sorted(wanted)
    for start in range(0, len(ids), _IDS_PER_QUERY):
        page = Register.objects.filter(pk__in=ids[start : start + _IDS_PER_QUERY], advertise=True).order_by("pk")
        rows = page.values_list("id", *ADVERTISED_FIELDS, "updated_at")
        for register_id, name, description, is_full_replica, latest, latest_docket, updated_at in rows:
            encoded = encode_advertisement(
                register_id, name, description, is_full_replica, latest, latest_docket, moment(updated_at)
            )
            yield PlannedAdvertisement(register_id, name, encoded)


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
    plan = chunked(
        needed_advertisements(needed, total),
        max_items=settings.SORCHA_BULK_MAX_ITEMS,
        max_bytes=settings.SORCHA_MAX_BODY_BYTES - _ENVELOPE_BYTES,
    )
    bodies = (
        bulk_body(chunk, full_sync=last, snapshot_at=stamp, total=total if last else None)
        for chunk, last in with_last(plan)
    )
    for bulk_answer in in_turn(bodies, client.bulk_advertise, beat):
        result.add(bulk_answer)
    return result


# ------------------------------------------------------------------------------ coalesced pushes
# Ids per database query of a flush: under SQLite's oldest limit on bound parameters (999).
_IDS_PER_QUERY = 900


@dataclass
class PushResult:
    """What one flush of coalesced changes did; `rejected` holds the Peer Service's 4xx answers."""

    registers_pushed: int = 0
    requests: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PEER_COUNTS, 0))
    rejected: list[PeerServiceRejected] = field(default_factory=list)

    def summary(self) -> str:
        counts = " ".join(f"{name}={self.counts[name]}" for name in PEER_COUNTS if name not in ("processed", "held"))
        return f"registers={self.registers_pushed} requests={self.requests} {counts} rejected={len(self.rejected)}"


def changed_advertisements(
    register_ids: Iterable[str], deleted_at: Mapping[str, datetime]
) -> list[PlannedAdvertisement]:
    """The current state of each register, read now, encoded as bulk items.

    Public → its advertisement; private → a removal stamped with its `updated_at`; gone → a
    removal stamped with its deletion time (or now, if that was not recorded), which leaves a
    tombstone so no older push brings it back.
    """
    ids = sorted(register_ids)
    rows: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        page = Register.objects.filter(pk__in=ids[start : start + _IDS_PER_QUERY])
        rows.update((row[0], row[1:]) for row in page.values_list("id", "advertise", *ADVERTISED_FIELDS, "updated_at"))
    now = timezone.now()
    planned = []
    for register_id in ids:
        row = rows.get(register_id)
        if row is None:
            removal = encode_removal(register_id, moment(deleted_at.get(register_id, now)))
            planned.append(PlannedAdvertisement(register_id, "", removal))
        elif not row[0]:
            planned.append(PlannedAdvertisement(register_id, "", encode_removal(register_id, moment(row[-1]))))
        else:
            _, name, description, is_full_replica, latest, latest_docket, updated_at = row
            encoded = encode_advertisement(
                register_id, name, description, is_full_replica, latest, latest_docket, moment(updated_at)
            )
            planned.append(PlannedAdvertisement(register_id, name, encoded))
    return planned


def change_body(chunk: list[PlannedAdvertisement]) -> bytes:
    """A bulk-advertise body of changes: not a full sync, so no `snapshotAt` and nothing swept."""
    return b'{"advertisements":[' + b",".join(planned.encoded for planned in chunk) + b'],"fullSync":false}'


def push_changes(
    register_ids: Iterable[str],
    deleted_at: Mapping[str, datetime],
    *,
    heartbeat: Callable[[], None] | None = None,
    client: PeerServiceClient | None = None,
) -> PushResult:
    """Send the current state of the given registers in as few bulk requests as the Peer Service's bounds allow.

    Raises PeerServiceUnavailable when a request could not be delivered (the caller retries all of
    them: a repeated item is `unchanged`). A 4xx is not retried: the request is split in halves until
    the refused registers are alone, so one bad register does not hold the others back.
    `heartbeat`: called before each request (the caller's hold on its flush).
    """
    client = client or PeerServiceClient.from_settings()
    result = PushResult()
    plan = chunked(
        changed_advertisements(register_ids, deleted_at),
        max_items=settings.SORCHA_BULK_MAX_ITEMS,
        max_bytes=settings.SORCHA_MAX_BODY_BYTES - _ENVELOPE_BYTES,
    )
    for chunk in plan:
        if chunk:
            _deliver(client, chunk, result, heartbeat)
    return result


# Refusals that can be about one item (or the size) of a request: halving the request finds it.
_ITEM_REFUSALS = frozenset({400, 413, 422})


def _deliver(
    client: PeerServiceClient,
    chunk: list[PlannedAdvertisement],
    result: PushResult,
    heartbeat: Callable[[], None] | None,
) -> None:
    if heartbeat is not None:
        heartbeat()
    result.requests += 1
    try:
        answer = client.bulk_advertise(change_body(chunk))
    except PeerServiceRejected as exc:
        if exc.status not in _ITEM_REFUSALS:
            raise  # not about an item (a token, a route): splitting would only multiply the refusals
        if len(chunk) == 1:
            result.rejected.append(exc)  # the client logged the Peer Service's answer
            return
        half = len(chunk) // 2
        _deliver(client, chunk[:half], result, heartbeat)
        _deliver(client, chunk[half:], result, heartbeat)
        return
    result.registers_pushed += len(chunk)
    for name in PEER_COUNTS:
        result.counts[name] += int(answer.get(name, 0))
