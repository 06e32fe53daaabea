"""Request and response bodies of the Peer API, validated with pydantic (fast for 10,000-item bodies).

drf-spectacular reads these models for the OpenAPI description, so the docs and the
validation are one source.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from django.conf import settings
from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
)

from peers.store import AdvertisementInput
from sorcha_site import bounds
from sorcha_site.api import UNKNOWN_FIELD

# pydantic patterns are Rust regexes, where `$` is the end of the text only: "<32 hex>\n" fails.
REGISTER_ID_PATTERN = rf"^{bounds.REGISTER_ID_CHARS}$"
MAX_VERSION = bounds.MAX_VERSION

RegisterId = Annotated[StrictStr, Field(pattern=REGISTER_ID_PATTERN, description="32 lowercase hex characters")]
Version = Annotated[StrictInt, Field(ge=0, le=MAX_VERSION)]
# Strict: an ISO-8601 string with a timezone, never a bare number read as a Unix time.
Moment = Annotated[AwareDatetime, Field(strict=True, json_schema_extra=bounds.MOMENT_SCHEMA_BOUNDS)]


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


NAME_PATTERN = bounds.NAME_PATTERN
TEXT_PATTERN = bounds.TEXT_PATTERN


def field_path(index: int | None, field: str) -> str:
    """`advertisements[3].name` for an item of a bulk, `name` for a single advertisement."""
    return field if index is None else f"advertisements[{index}].{field}"


class AdvertisementFields(BaseModel):
    """What a source states about one register. Fields left out keep their stored value."""

    # A field the endpoint does not know is refused (400 naming it): a typo never passes as "left out".
    model_config = ConfigDict(extra="forbid", frozen=True)

    isPublic: StrictBool = Field(description="false removes the advertisement")
    # The patterns document the rules checked in `to_input` (with messages that name them): a name
    # has a visible character, neither text has a NUL.
    name: Annotated[StrictStr, Field(max_length=38, json_schema_extra={"pattern": NAME_PATTERN})] | None = None
    description: Annotated[StrictStr, Field(max_length=2048, json_schema_extra={"pattern": TEXT_PATTERN})] | None = None
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
    model_config = ConfigDict(extra="forbid", frozen=True)

    advertisements: list[BulkAdvertisement] = Field(
        max_length=settings.SORCHA_BULK_MAX_ITEMS,
        description="each `registerId` at most once",
        json_schema_extra={"x-unique-items-by": "registerId"},
    )
    fullSync: StrictBool = Field(
        default=False, description="true: the list is the complete set of local public registers (sweeps the rest)"
    )
    snapshotAt: Moment | None = Field(
        default=None,
        description="Register Service clock taken before it read its database; marks items of a chunked full sync. "
        "Left out (the original Sorcha client), a full sync is stamped with its arrival less "
        "FULL_SYNC_SNAPSHOT_MARGIN, as this node's own full syncs are",
    )
    total: Annotated[StrictInt, Field(ge=0, le=2**31)] | None = Field(
        default=None,
        description="with fullSync: how many registers the whole full sync listed, over all its requests; a final "
        "request whose marks (the earlier requests' lists) fall short of it gets 503, never a sweep",
    )

    def snapshot_micros(self, window: TimeWindow) -> int | None:
        if self.snapshotAt is None:
            return None
        try:
            return window.micros(self.snapshotAt)
        except ValueError as exc:
            raise ValueError(f"snapshotAt: {exc}") from None

    def to_inputs(self, window: TimeWindow) -> list[AdvertisementInput]:
        """One cheap pass after pydantic: bounds, and each register listed once (ValueError naming the index).

        The checks of `to_input` inlined (a full sync's 10,000 items, 100,000 in all): an item that
        fails one goes through `to_input`, which raises the message that names the field.
        """
        inputs: list[AdvertisementInput] = []
        append = inputs.append
        first_index: dict[str, int] = {}
        earliest, latest, epoch = window.earliest, window.latest, bounds.EPOCH
        for index, advertisement in enumerate(self.advertisements):
            register_id = advertisement.registerId
            seen_at = first_index.setdefault(register_id, index)
            if seen_at != index:
                raise ValueError(f"advertisements[{index}].registerId: duplicate of advertisements[{seen_at}]")
            name, description, moment = advertisement.name, advertisement.description, advertisement.sourceUpdatedAt
            micros = None
            if moment is not None:
                delta = moment - epoch  # bounds.moment_micros, inline
                micros = (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds
            if (
                (name is not None and ("\x00" in name or not name.strip()))
                or (description is not None and "\x00" in description)
                or (micros is not None and not earliest <= micros <= latest)
            ):
                append(advertisement.to_input(register_id, window, index))  # raises, naming the field
                continue
            append(
                AdvertisementInput(
                    register_id,
                    advertisement.isPublic,
                    name,
                    description,
                    advertisement.latestVersion,
                    advertisement.latestDocketVersion,
                    advertisement.isFullReplica,
                    micros,
                )
            )
        return inputs


Micros = Annotated[
    StrictInt,
    Field(
        ge=bounds.MIN_MOMENT_MICROS,
        le=2**62,
        json_schema_extra={"x-earliest": bounds.MOMENT_SCHEMA_BOUNDS["x-earliest"], "x-latest": "now + CLOCK_SKEW_MAX"},
    ),
]


class DigestRequest(BaseModel):
    """One page of a full sync by digest: the registers the source lists, each with its `sourceUpdatedAt`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    snapshotAt: Moment = Field(description="Register Service clock taken before it read its database")
    registerIds: list[RegisterId] = Field(
        max_length=settings.SORCHA_DIGEST_MAX_ITEMS, json_schema_extra={"uniqueItems": True}
    )
    sourceUpdatedAt: list[Micros] = Field(
        max_length=settings.SORCHA_DIGEST_MAX_ITEMS,
        description="each register's updated_at on the Register Service, in microseconds since the Unix epoch "
        "(UTC), in the order of `registerIds`: as many stamps as registers",
        json_schema_extra={"x-same-length-as": "registerIds"},
    )
    final: StrictBool = Field(default=False, description="true on the last page of the full sync")
    total: Annotated[StrictInt, Field(ge=0, le=2**31)] | None = Field(
        default=None,
        description="with final: how many registers the whole full sync listed, over all its pages; marks that "
        "fall short of it get 409, never a sweep",
    )

    def snapshot_micros(self, window: TimeWindow) -> int:
        try:
            return window.micros(self.snapshotAt)
        except ValueError as exc:
            raise ValueError(f"snapshotAt: {exc}") from None

    def pairs(self, window: TimeWindow) -> list[tuple[str, int]]:
        """`(registerId, sourceUpdatedAt)` after the checks pydantic cannot state (ValueError naming the field)."""
        ids, stamps = self.registerIds, self.sourceUpdatedAt
        if len(ids) != len(stamps):
            raise ValueError(f"sourceUpdatedAt: {len(stamps)} stamps for {len(ids)} registerIds")
        if stamps and max(stamps) > window.latest:
            index = next(i for i, stamp in enumerate(stamps) if stamp > window.latest)
            problem = bounds.moment_problem(stamps[index], now=window.now, skew=window.skew)
            raise ValueError(f"sourceUpdatedAt[{index}]: {problem}")
        if len(set(ids)) != len(ids):
            first_index: dict[str, int] = {}
            for index, register_id in enumerate(ids):
                seen_at = first_index.setdefault(register_id, index)
                if seen_at != index:
                    raise ValueError(f"registerIds[{index}]: duplicate of registerIds[{seen_at}]")
        return list(zip(ids, stamps, strict=True))


class BulkAdvertiseResult(BaseModel):
    processed: int
    added: int
    updated: int
    removed: int
    unchanged: int
    held: int = Field(description="removals held back by the mass-removal guard until the next full sync confirms")
    stale: int = Field(description="items refused because the store holds a newer state of that register")


class DigestResult(BulkAdvertiseResult):
    needed: list[str] = Field(
        description="registers to send in full through bulk-advertise with the same snapshotAt (the last request "
        "with fullSync and total): not held here as stated"
    )
    complete: bool = Field(description="the final page needed nothing: the full sync is applied (swept) already")


def describe_validation_error(error: ValidationError, limit: int = 5) -> str:
    """`advertisements[3].registerId: String should match pattern ...; fullSync: ...`"""
    parts = []
    for detail in error.errors()[:limit]:
        path = ""
        for location in detail["loc"]:
            path += f"[{location}]" if isinstance(location, int) else (f".{location}" if path else str(location))
        message = UNKNOWN_FIELD if detail["type"] == "extra_forbidden" else detail["msg"]
        parts.append(f"{path or 'body'}: {message}")
    more = error.error_count() - limit
    if more > 0:
        parts.append(f"and {more} more errors")
    return "; ".join(parts)
