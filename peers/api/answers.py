"""The Peer API's answers and path parameters, for the OpenAPI description only (drf-spectacular reads
these models; the views answer with the store's own encodings)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from drf_spectacular.utils import OpenApiParameter
from pydantic import BaseModel, ConfigDict, Field, RootModel

from peers.api.schemas import REGISTER_ID_PATTERN
from peers.history import PEER_EXCHANGE_HISTORY, POOL_HISTORY_MAX

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
    peerCount: int = Field(ge=0, description="distinct verified, unexpired origins advertising it")
    directPeerCount: int = Field(
        ge=0, description="of those, the origins this node exchanges with directly (the rest come through relays)"
    )
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
    journalDropped: int = Field(
        ge=0, description="journaled writes this process dropped at STORE_JOURNAL_MAX_OPS / STORE_JOURNAL_MAX_AGE"
    )
    localAdvertisements: int = Field(ge=0)
    remoteAdvertisements: int = Field(ge=0)
    lastFullSync: LastFullSync | None
    heldRemovals: list[str] = Field(description="register ids the mass-removal guard holds back")
    voidedSnapshots: int = Field(
        ge=0, description="stored full-sync snapshots voided (ahead of the clock, or blocking over one interval)"
    )


class ExchangeRecord(BaseModel):
    """One gossip exchange with a peer (an inbound one is recorded only when its message was accepted)."""

    at: datetime
    direction: Literal["outbound", "inbound"] = Field(description="outbound: this node called the peer")
    outcome: Literal["ok", "refused_address", "unreachable", "rejected", "reply_refused"]
    durationSeconds: float = Field(ge=0)
    bytesSent: int = Field(ge=0)
    bytesReceived: int = Field(ge=0)
    advertisements: int | None = Field(
        ge=0, description="the advertisements the peer's message stood for (its list or its digest); null if none came"
    )
    digestOnly: bool = Field(description="the peer's message carried its digest, not its list")
    error: str = Field(description="why it failed; empty when it succeeded")


class PeerDescription(BaseModel):
    id: int
    peerId: str | None = Field(description="null until the peer's first signed message")
    name: str
    url: str | None = Field(
        description="the URL proven by this node's call and the peer's signed reply; null until then"
    )
    claimedUrl: str | None = Field(description="the URL the peer claims in its messages, not yet proven")
    status: Literal["healthy", "backing_off", "banned", "never", "pending"]
    isSeed: bool
    approved: bool = Field(description="approved by an operator (allowlist mode; also kept from eviction)")
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
    recentExchanges: list[ExchangeRecord] = Field(
        max_length=PEER_EXCHANGE_HISTORY, description="the last exchanges with the peer, oldest first"
    )


class PeerDescriptionList(RootModel[list[PeerDescription]]):
    """Every peer this node knows, banned ones included."""


class PoolSample(BaseModel):
    """The pool's size at one moment (sampled once a minute)."""

    sampledAt: datetime
    local: int = Field(ge=0, description="local advertisements: this node's public registers")
    remote: int = Field(ge=0, description="remote advertisements: learnt from peers")


class PoolHistory(RootModel[list[PoolSample]]):
    """The samples of the last day, oldest first."""

    root: list[PoolSample] = Field(max_length=POOL_HISTORY_MAX)


class ExchangeConflict(BaseModel):
    """A gossip message not applied: a replay, or a digest standing for a set this node does not hold."""

    detail: str
    needSet: bool = Field(
        default=False,
        description="true: the message's `advertisementsDigest` is not that of the set held here for the sender; "
        "send the message again with its `advertisements`",
    )


class GossipRoundOutcome(BaseModel):
    peers: int = Field(ge=0, description="peers contacted")
    ok: int = Field(ge=0)
    failed: int = Field(ge=0)
    skipped: int = Field(ge=0, description="backed off (with respectBackoff) or left out")
