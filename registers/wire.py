"""An advertisement's wire form, and the bulk requests that carry it to the Peer Service.

Every item the Register Service sends — in a full sync, in the registers a digest says are needed,
in a flush of pushed changes — is encoded by `encode_advertisement` or `encode_removal`, once, and
the request bodies are assembled from those bytes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any, NamedTuple

import orjson
from django.conf import settings

# The fields a Peer Service advertises; a change to one of them while public is worth a push.
ADVERTISED_FIELDS = ("name", "description", "is_full_replica", "latest_version", "latest_docket_version")
# The counts a Peer Service answers a bulk request or a digest page with.
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


class PlannedAdvertisement(NamedTuple):
    register_id: str
    name: str
    encoded: bytes


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


def bulk_chunks(advertisements: Iterable[PlannedAdvertisement]) -> Iterator[list[PlannedAdvertisement]]:
    """`chunked` to the Peer Service's limits on items and body bytes."""
    return chunked(
        advertisements,
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


def change_body(chunk: list[PlannedAdvertisement]) -> bytes:
    """A bulk-advertise body of changes: not a full sync, so no `snapshotAt` and nothing swept."""
    return b'{"advertisements":[' + b",".join(planned.encoded for planned in chunk) + b'],"fullSync":false}'


def digest_body(page: list[tuple[str, int]], snapshot_at: str, final: bool, total: int | None) -> bytes:
    """A page of a full sync by digest: `(registerId, sourceUpdatedAt in microseconds)` pairs."""
    body: dict[str, Any] = {
        "snapshotAt": snapshot_at,
        "registerIds": [register_id for register_id, _ in page],
        "sourceUpdatedAt": [stamp for _, stamp in page],
        "final": final,
    }
    if total is not None:
        body["total"] = total
    return orjson.dumps(body)
