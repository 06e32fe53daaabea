"""Request and response bodies of the Peer API, validated with pydantic (fast for 10,000-item bodies).

drf-spectacular reads these models for the OpenAPI description, so the docs and the
validation are one source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.conf import settings
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from peers.store import AdvertisementInput
from sorcha_site import bounds

# pydantic patterns are Rust regexes, where `$` is the end of the text only: "<32 hex>\n" fails.
REGISTER_ID_PATTERN = rf"^{bounds.REGISTER_ID_CHARS}$"
MAX_VERSION = bounds.MAX_VERSION

RegisterId = Annotated[StrictStr, Field(pattern=REGISTER_ID_PATTERN, description="32 lowercase hex characters")]
Version = Annotated[StrictInt, Field(ge=0, le=MAX_VERSION)]
# Strict: an ISO-8601 string with a timezone, never a bare number read as a Unix time.
Moment = Annotated[AwareDatetime, Field(strict=True)]


class TimeWindow:
    """The bounds of a client's timestamps, read once per request: [2000-01-01, now + CLOCK_SKEW_MAX]."""

    __slots__ = ("earliest", "latest", "now", "skew")

    def __init__(self, now: int | None = None, skew: float | None = None) -> None:
        self.now = bounds.now_micros() if now is None else now
        self.skew = bounds.clock_skew_max() if skew is None else skew
        self.earliest = bounds.MIN_MOMENT_MICROS
        self.latest = self.now + int(self.skew * 1_000_000)

    def micros(self, moment: datetime) -> int:
        """Exact microseconds since the epoch (never via a float, never converted to UTC first);
        ValueError saying why when out of bounds (the caller names the field)."""
        micros = bounds.moment_micros(moment)
        if self.earliest <= micros <= self.latest:
            return micros
        raise ValueError(bounds.moment_problem(micros, now=self.now, skew=self.skew))


def field_path(index: int | None, field: str) -> str:
    """`advertisements[3].name` for an item of a bulk, `name` for a single advertisement."""
    return field if index is None else f"advertisements[{index}].{field}"


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

    def to_input(self, register_id: str, window: TimeWindow, index: int | None = None) -> AdvertisementInput:
        """The store's input, after the bounds pydantic cannot state; ValueError `field: why`.

        The tests are inline and paths are built only on error: this runs 10,000 times a full sync.
        """
        name, description = self.name, self.description
        if name is not None and ("\x00" in name or not name.strip()):
            raise ValueError(f"{field_path(index, 'name')}: {bounds.text_problem(name, blank_allowed=False)}")
        if description is not None and "\x00" in description:
            raise ValueError(f"{field_path(index, 'description')}: {bounds.text_problem(description)}")
        source_updated_at = None
        if self.sourceUpdatedAt is not None:
            try:
                source_updated_at = window.micros(self.sourceUpdatedAt)
            except ValueError as exc:
                raise ValueError(f"{field_path(index, 'sourceUpdatedAt')}: {exc}") from None
        return AdvertisementInput(
            register_id=register_id,
            is_public=self.isPublic,
            name=name,
            description=description,
            latest_version=self.latestVersion,
            latest_docket_version=self.latestDocketVersion,
            is_full_replica=self.isFullReplica,
            source_updated_at=source_updated_at,
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

    def snapshot_micros(self, window: TimeWindow) -> int | None:
        if self.snapshotAt is None:
            return None
        try:
            return window.micros(self.snapshotAt)
        except ValueError as exc:
            raise ValueError(f"snapshotAt: {exc}") from None

    def to_inputs(self, window: TimeWindow) -> list[AdvertisementInput]:
        """One cheap pass after pydantic: bounds, and each register listed once (ValueError naming the index)."""
        inputs = []
        first_index: dict[str, int] = {}
        for index, advertisement in enumerate(self.advertisements):
            register_id = advertisement.registerId
            seen_at = first_index.setdefault(register_id, index)
            if seen_at != index:
                raise ValueError(f"advertisements[{index}].registerId: duplicate of advertisements[{seen_at}]")
            inputs.append(advertisement.to_input(register_id, window, index))
        return inputs


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
