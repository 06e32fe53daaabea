"""Plain data of the advertisement store, and time helpers that never raise.

Nothing here knows Redis. Timestamps are integers of microseconds since the epoch (the
source's clock) or floats of seconds (this node's clock, for TTL bookkeeping).
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from sorcha_site.bounds import moment_micros

# Tombstone kinds: a removal the source asked for, and a removal made by a full sync's sweep
# (only as true as the snapshot that made it: a newer full sync listing the register wins).
REMOVED = "r"
SWEPT = "s"


class StaleFullSync(Exception):
    """A full sync built from a snapshot older than the last one applied."""

    def __init__(self, snapshot_at: int, last_snapshot_at: int) -> None:
        self.snapshot_at = snapshot_at
        self.last_snapshot_at = last_snapshot_at
        super().__init__(
            f"snapshotAt {format_micros(snapshot_at)} is older than the last applied full sync "
            f"({format_micros(last_snapshot_at)}); a newer full sync has already been applied"
        )


class MarksUnavailable(Exception):
    """A chunked full sync's marks cannot be shared or read (Redis unreachable): no sweep now."""

    retry_after = 5

    def __init__(self, snapshot_at: int) -> None:
        self.snapshot_at = snapshot_at
        super().__init__(
            "the advertisement store cannot reach Redis, where the marks of a full sync are kept for every "
            "process; listed items were refreshed, the sweep waits until the store is healthy: retry"
        )


class MarksLost(Exception):
    """A final chunk whose marks fall short of the sync's total: they were lost, no sweep now."""

    def __init__(self, snapshot_at: int, marked: int, total: int) -> None:
        self.snapshot_at = snapshot_at
        super().__init__(
            f"this full sync listed {total} registers in all, but only {marked} are marked here (the earlier "
            "requests' marks were lost: Redis restarted or failed over meanwhile); listed items were refreshed, "
            "nothing was swept: send the full sync again"
        )


def now_micros() -> int:
    return time.time_ns() // 1000


def to_micros(moment: datetime) -> int:
    return moment_micros(moment)


def format_micros(micros: int | None) -> str | None:
    """ISO-8601 in UTC; None for None or a value no datetime can hold (never raises)."""
    if micros is None:
        return None
    try:
        moment = datetime.fromtimestamp(micros // 1_000_000, tz=UTC).replace(microsecond=micros % 1_000_000)
    except (OverflowError, ValueError, OSError):
        return None
    return moment.isoformat().replace("+00:00", "Z")


def format_seconds(seconds: float | None) -> str | None:
    if seconds is None or seconds != seconds or seconds in (float("inf"), float("-inf")):
        return None
    return format_micros(int(seconds * 1_000_000))


@dataclass(slots=True)
class AdvertisementInput:
    """One advertisement as a source states it. Unset fields keep their stored value."""

    register_id: str
    is_public: bool = True
    name: str | None = None
    description: str | None = None
    latest_version: int | None = None
    latest_docket_version: int | None = None
    is_full_replica: bool | None = None
    source_updated_at: int | None = None  # microseconds since the epoch, the source's clock


class Entry:
    """An advertisement held in the pool (local when `peer_id` is None).

    For a remote entry `source_updated_at` is this node's clock when it first received the
    entry in its current form: a peer forgotten later (a peer tombstone) outranks it.

    Every web process mirrors the whole pool, so an entry is kept compact: its fields live only
    in `value`, the encoded form stored in Redis, and `fields` decodes them when asked (a
    read-only mapping). The constructor takes `fields` for callers that hold them; they must
    be what `value` encodes (`encode_value`).
    """

    __slots__ = ("expires_at", "peer_id", "refreshed_at", "register_id", "source_updated_at", "value", "verified")

    def __init__(
        self,
        register_id: str,
        peer_id: str | None,
        source_updated_at: int,
        fields: Mapping[str, Any] | None,
        value: str,  # the encoded form stored in Redis; equality of values is idempotence
        refreshed_at: float,
        expires_at: float,
        verified: bool,
    ) -> None:
        self.register_id = register_id
        self.peer_id = peer_id
        self.source_updated_at = source_updated_at
        self.value = value
        self.refreshed_at = refreshed_at
        self.expires_at = expires_at
        self.verified = verified

    @property
    def fields(self) -> Mapping[str, Any]:
        return decoded_fields(self.value)

    def _state(self) -> tuple[Any, ...]:
        return (
            self.register_id,
            self.peer_id,
            self.source_updated_at,
            self.value,
            self.refreshed_at,
            self.expires_at,
            self.verified,
        )

    def __eq__(self, other: object) -> bool:
        return self._state() == other._state() if isinstance(other, Entry) else NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable, like the dataclass it replaces

    def __repr__(self) -> str:
        return (
            f"Entry(register_id={self.register_id!r}, peer_id={self.peer_id!r}, "
            f"source_updated_at={self.source_updated_at!r}, value={self.value!r}, "
            f"refreshed_at={self.refreshed_at!r}, expires_at={self.expires_at!r}, verified={self.verified!r})"
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "registerId": self.register_id,
            "peerId": self.peer_id,
            "isPublic": True,
            **self.fields,
            "sourceUpdatedAt": format_micros(self.source_updated_at) if self.peer_id is None else None,
            "refreshedAt": format_seconds(self.refreshed_at),
            "expiresAt": format_seconds(self.expires_at),
            "verified": self.verified,
        }


@dataclass(slots=True)
class Tombstone:
    source_updated_at: int
    expires_at: float
    kind: str = REMOVED

    def encode(self) -> str:
        return f"{self.source_updated_at}|{self.kind}"

    @classmethod
    def decode(cls, raw: str, expires_at: float) -> Tombstone:
        stamp, _, kind = raw.partition("|")
        return cls(int(stamp), expires_at, kind or REMOVED)


@dataclass(slots=True)
class BulkResult:
    processed: int = 0
    added: int = 0
    updated: int = 0
    removed: int = 0
    unchanged: int = 0
    held: int = 0
    stale: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "processed": self.processed,
            "added": self.added,
            "updated": self.updated,
            "removed": self.removed,
            "unchanged": self.unchanged,
            "held": self.held,
            "stale": self.stale,
        }

    @property
    def changed(self) -> bool:
        return bool(self.added or self.updated or self.removed)


@dataclass(slots=True)
class DigestAnswer:
    """A digest page's answer: the counts, the registers to send in full, and whether the sync is done."""

    result: BulkResult
    needed: list[str]
    complete: bool  # the final page needed nothing: swept and recorded like a plain full sync


@dataclass(slots=True)
class FullSyncState:
    """What the store remembers of full syncs: the stale check and the held removals."""

    last_snapshot_at: int = 0
    last_applied_at: float | None = None
    last_result: dict[str, int] = field(default_factory=dict)
    held_snapshot_at: int | None = None
    held_ids: frozenset[str] = frozenset()
    voided: int = 0  # future last-snapshots voided so far (a clock step on the source)

    def encode(self) -> str:
        body = {
            "lastSnapshotAt": self.last_snapshot_at,
            "lastAppliedAt": self.last_applied_at,
            "lastResult": self.last_result,
            "heldSnapshotAt": self.held_snapshot_at,
            "heldIds": sorted(self.held_ids),
            "voided": self.voided,
        }
        return f"{self.last_snapshot_at}|{orjson.dumps(body).decode()}"

    @classmethod
    def decode(cls, raw: str) -> FullSyncState:
        body = orjson.loads(raw.split("|", 1)[1])
        return cls(
            last_snapshot_at=int(body["lastSnapshotAt"]),
            last_applied_at=body.get("lastAppliedAt"),
            last_result=dict(body.get("lastResult") or {}),
            held_snapshot_at=body.get("heldSnapshotAt"),
            held_ids=frozenset(body.get("heldIds") or ()),
            voided=int(body.get("voided") or 0),
        )


def encode_value(source_updated_at: int, fields: dict[str, Any]) -> str:
    """`<sourceUpdatedAt>|<json>`: the script compares the number without decoding the JSON."""
    return f"{source_updated_at}|{orjson.dumps(fields).decode()}"


def decode_value(raw: str) -> tuple[int, dict[str, Any]]:
    stamp, _, body = raw.partition("|")
    return int(stamp), orjson.loads(body)


def checked_stamp(raw: str) -> int:
    """The `sourceUpdatedAt` of an encoded value read from Redis, once its JSON part is checked to be an
    object (what `fields` decodes): ValueError (orjson's decode error is one) for a value that is not
    `<integer>|<JSON object>`. One split and one parse, as a restart checks every value of the pool."""
    stamp, bar, body = raw.partition("|")
    if not bar or type(orjson.loads(body)) is not dict:
        raise ValueError("the advertisement's value is not <sourceUpdatedAt>|<JSON object>")
    return int(stamp)


def value_body(raw: str) -> str:
    """The JSON part of an encoded value."""
    return raw[raw.index("|") + 1 :]


def decoded_fields(raw: str) -> Mapping[str, Any]:
    """The fields of an encoded value, read-only."""
    return MappingProxyType(orjson.loads(value_body(raw)))


DEFAULT_FIELDS: Mapping[str, Any] = {
    "name": "",
    "description": "",
    "latestVersion": 0,
    "latestDocketVersion": 0,
    "isFullReplica": True,
}


def merged_fields(advertisement: AdvertisementInput, current: Mapping[str, Any] | None) -> dict[str, Any]:
    base = current or DEFAULT_FIELDS
    a = advertisement
    return {
        "name": base["name"] if a.name is None else a.name,
        "description": base["description"] if a.description is None else a.description,
        "latestVersion": base["latestVersion"] if a.latest_version is None else a.latest_version,
        "latestDocketVersion": base["latestDocketVersion"]
        if a.latest_docket_version is None
        else a.latest_docket_version,
        "isFullReplica": base["isFullReplica"] if a.is_full_replica is None else a.is_full_replica,
    }
