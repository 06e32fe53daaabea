"""Request and response bodies of the Peer API, validated with pydantic (fast for 10,000-item bodies).

drf-spectacular reads these models for the OpenAPI description, so the docs and the
validation are one source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from django.conf import settings
from drf_spectacular.utils import OpenApiParameter
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from peers.store import AdvertisementInput, to_micros

REGISTER_ID_PATTERN = r"^[0-9a-f]{32}$"
MAX_VERSION = 2**63 - 1

RegisterId = Annotated[StrictStr, Field(pattern=REGISTER_ID_PATTERN, description="32 lowercase hex characters")]
Version = Annotated[StrictInt, Field(ge=0, le=MAX_VERSION)]
# Strict: an ISO-8601 string with a timezone, never a bare number read as a Unix time.
Moment = Annotated[AwareDatetime, Field(strict=True)]


class AdvertisementFields(BaseModel):
    """What a source states about one register. Fields left out keep their stored value."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    isPublic: StrictBool = Field(description="false removes the advertisement")
    name: Annotated[StrictStr, Field(max_length=38)] | None = None
    description: Annotated[StrictStr, Field(max_length=2048)] | None = None
    latestVersion: Version | None = None
    latestDocketVersion: Version | None = None
    isFullReplica: StrictBool | None = None
    sourceUpdatedAt: Moment | None = Field(
        default=None, description="the register's updated_at on the Register Service; orders changes"
    )

    def to_input(self, register_id: str) -> AdvertisementInput:
        return AdvertisementInput(
            register_id=register_id,
            is_public=self.isPublic,
            name=self.name,
            description=self.description,
            latest_version=self.latestVersion,
            latest_docket_version=self.latestDocketVersion,
            is_full_replica=self.isFullReplica,
            source_updated_at=to_micros(self.sourceUpdatedAt) if self.sourceUpdatedAt is not None else None,
        )


class BulkAdvertisement(AdvertisementFields):
    registerId: RegisterId


class BulkAdvertiseRequest(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    advertisements: list[BulkAdvertisement] = Field(max_length=settings.SORCHA_BULK_MAX_ITEMS)
    fullSync: StrictBool = Field(
        default=False, description="true: the list is the complete set of local public registers (sweeps the rest)"
    )
    snapshotAt: Moment | None = Field(
        default=None,
        description="Register Service clock taken before it read its database; marks items of a chunked full sync",
    )

    def snapshot_micros(self) -> int | None:
        return to_micros(self.snapshotAt) if self.snapshotAt is not None else None


class BulkAdvertiseResult(BaseModel):
    processed: int
    added: int
    updated: int
    removed: int
    unchanged: int
    held: int = Field(description="removals held back by the mass-removal guard until the next full sync confirms")
    stale: int = Field(description="items refused because the store holds a newer state of that register")


# ---------------------------------------------------------------- documentation only
# The URLconf's kwarg is register_id; the schema names it registerId (sorcha_site.schema).
REGISTER_ID_PARAMETER = OpenApiParameter(
    "register_id", str, OpenApiParameter.PATH, pattern=REGISTER_ID_PATTERN, description="32 lowercase hex characters"
)


class AvailableRegister(BaseModel):
    registerId: str = Field(pattern=REGISTER_ID_PATTERN)
    name: str
    description: str
    isPublic: Literal[True]
    isLocal: bool = Field(description="this node advertises it itself")
    peerCount: int = Field(ge=0, description="peers advertising it")
    fullReplicaPeerCount: int = Field(ge=0)
    latestVersion: int = Field(ge=0)
    latestDocketVersion: int = Field(ge=0)
    verified: bool
    lastSeen: datetime | None


class AvailableRegisterList(RootModel[list[AvailableRegister]]):
    """Every register advertised here or by a peer, sorted by name."""


class StoredAdvertisement(BaseModel):
    """The advertisement as stored after the call (a stale or refused removal leaves it in place)."""

    registerId: str = Field(pattern=REGISTER_ID_PATTERN)
    peerId: str | None
    isPublic: Literal[True]
    name: str
    description: str
    latestVersion: int = Field(ge=0)
    latestDocketVersion: int = Field(ge=0)
    isFullReplica: bool
    sourceUpdatedAt: datetime | None
    refreshedAt: datetime | None
    expiresAt: datetime | None
    verified: bool
    outcome: str = Field(description="added, updated, unchanged or stale")


class AdvertisementRemoved(BaseModel):
    """No advertisement of that register is held any more (`isPublic: false` removed it, or there was none)."""

    registerId: str = Field(pattern=REGISTER_ID_PATTERN)
    isPublic: Literal[False]
    outcome: str = Field(description="removed, unchanged or stale")


def _exactly_one(schema: dict[str, Any]) -> None:
    schema["oneOf"] = schema.pop("anyOf")


class AdvertiseAnswer(RootModel[StoredAdvertisement | AdvertisementRemoved]):
    """The stored advertisement, or the removal's answer (`isPublic` tells which)."""

    # `isPublic` is true in one and false in the other: exactly one matches.
    model_config = ConfigDict(json_schema_extra=_exactly_one)


class LastFullSync(BaseModel):
    snapshotAt: datetime | None
    appliedAt: datetime | None
    result: dict[str, int] = Field(description="counts of the last applied full sync, as bulk-advertise answers")


class StoreStatus(BaseModel):
    store: Literal["ok", "degraded"] = Field(
        description="degraded: Redis is unreachable and the pool is served from memory"
    )
    degradedSince: datetime | None
    lastError: str | None
    journalLength: int = Field(ge=0, description="writes made while degraded, replayed when Redis is back")
    localAdvertisements: int = Field(ge=0)
    remoteAdvertisements: int = Field(ge=0)
    lastFullSync: LastFullSync | None
    heldRemovals: list[str] = Field(description="register ids the mass-removal guard holds back")


class PeerDescription(BaseModel):
    id: int
    peerId: str | None = Field(description="null until the peer's first signed message")
    name: str
    url: str
    status: Literal["healthy", "backing_off", "banned", "never"]
    isSeed: bool
    banned: bool
    firstSeen: datetime | None
    lastSeen: datetime | None
    lastExchangeAt: datetime | None
    lastExchangeResult: Literal["never", "ok", "unreachable", "rejected", "error"]
    lastError: str
    consecutiveFailures: int = Field(ge=0)
    nextAttemptAt: datetime | None = Field(description="backed off until then")
    advertisementsReceived: int = Field(ge=0)
    advertisementsHeld: int = Field(ge=0)


class PeerDescriptionList(RootModel[list[PeerDescription]]):
    """Every peer this node knows, banned ones included."""


class GossipRoundOutcome(BaseModel):
    peers: int = Field(ge=0, description="peers contacted")
    ok: int = Field(ge=0)
    failed: int = Field(ge=0)


def describe_validation_error(error: ValidationError, limit: int = 5) -> str:
    """`advertisements[3].registerId: String should match pattern ...; fullSync: ...`"""
    parts = []
    for detail in error.errors()[:limit]:
        path = ""
        for location in detail["loc"]:
            path += f"[{location}]" if isinstance(location, int) else (f".{location}" if path else str(location))
        parts.append(f"{path or 'body'}: {detail['msg']}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more errors")
    return "; ".join(parts)
