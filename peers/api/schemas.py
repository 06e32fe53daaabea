"""Request and response bodies of the Peer API, validated with pydantic (fast for 10,000-item bodies).

drf-spectacular reads these models for the OpenAPI description, so the docs and the
validation are one source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.conf import settings
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

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


class AvailableRegister(BaseModel):
    registerId: str
    name: str
    description: str
    isPublic: bool
    isLocal: bool
    peerCount: int
    fullReplicaPeerCount: int
    latestVersion: int
    latestDocketVersion: int
    verified: bool
    lastSeen: datetime | None


class StoredAdvertisement(BaseModel):
    registerId: str
    peerId: str | None
    isPublic: bool
    name: str
    description: str
    latestVersion: int
    latestDocketVersion: int
    isFullReplica: bool
    sourceUpdatedAt: datetime | None
    refreshedAt: datetime | None
    expiresAt: datetime | None
    verified: bool
    outcome: str = Field(description="added, updated, unchanged, removed or stale")


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
