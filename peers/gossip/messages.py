"""The signed gossip message: its wire models, this node's own message, and verifying a peer's.

A message carries the sender's identity (id, public key, URL, name), a sequence number that
only grows, its local public advertisements and the URLs of peers it knows. The body is
signed with the sender's Ed25519 key (header `X-Sorcha-Signature`), and the sender's id is a
digest of that key, so a node can only ever speak for itself.

Digests (`peers.digests`): a node that speaks them says so with the `X-Sorcha-Gossip-Digests: 1`
request header and puts `advertisementsDigest` beside its list; each side tells the other which
digest of the other's set it holds (`heldDigest`). While a peer holds this node's current set,
the message carries the digest alone. A peer that never says it speaks digests gets the
original message, byte for byte the shape it knows.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime
from typing import Annotated, Any

import orjson
from django.conf import settings
from django.utils import timezone
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictInt,
    StrictStr,
    ValidationError,
    WithJsonSchema,
    field_validator,
)

from peers import digests, outbound
from peers.admission import GossipRejected
from peers.api.schemas import TEXT_PATTERN, describe_validation_error
from peers.gossip.antientropy import MAX_VERSIONS
from peers.gossip.records import GossipAdvertisement
from peers.identity import get_identity, next_sequence, peer_id_for, sign, signature_valid
from peers.models import Peer
from peers.store import Entry, get_store
from sorcha_site.bounds import MAX_VERSION, moment_micros, moment_problem, now_micros

SIGNATURE_HEADER = "X-Sorcha-Signature"
# Sent by nodes that understand digests; a receiver answers them with `advertisementsDigest` and `heldDigest`.
DIGESTS_HEADER = "X-Sorcha-Gossip-Digests"
# Sent by nodes that relay signed sets; a receiver that does too answers with `originsDigest`, and the
# next exchanges between them carry the relay fields instead of the sender's own list (peers.gossip.relay).
RELAY_HEADER = "X-Sorcha-Gossip-Relay"
EXCHANGE_PATH = "/api/peers/exchange"
MAX_PEERS_IN_MESSAGE = 100
# A digest-only message passes on a few known URLs (a different sample each time), not all of them:
# discovery goes on at a bounded cost, and full messages still carry every one.
MAX_PEERS_IN_DIGEST_MESSAGE = 3
NEED_SET = "need_set"


def _peer_url(value: str) -> str:
    return outbound.normalise_url(value)


# JSON clients (JavaScript among them) lose integer precision past 2^53: larger versions are refused.
GossipVersion = Annotated[StrictInt, Field(ge=0, le=MAX_VERSION)]
# The pattern documents the gist of `outbound.normalise_url` (an http or https URL naming a host, without
# credentials, query or fragment); the validator decides, with a message saying why.
PEER_URL_PATTERN = r"^[Hh][Tt][Tt][Pp][Ss]?://[^\s\x00-\x1f\x7f/?#@]+(/[^\s\x00-\x1f\x7f?#]*)?$"
PeerUrl = Annotated[
    StrictStr,
    Field(
        max_length=outbound.URL_MAX_LENGTH,
        description="an http or https URL",
        json_schema_extra={"pattern": PEER_URL_PATTERN},
    ),
    AfterValidator(_peer_url),
]


class PeerReference(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    url: PeerUrl


def _no_default(schema: dict[str, Any]) -> None:
    """The schema of a field that may be left out but is never null (as `_left_out_never_null` checks)."""
    schema.pop("default", None)
    options = [option for option in schema.pop("anyOf", []) if option != {"type": "null"}]
    if options:
        schema.update(options[0])


def _set_or_digest(schema: dict[str, Any]) -> None:
    schema["anyOf"] = [
        {"required": ["advertisements"]},
        {"required": ["advertisementsDigest"]},
        {"required": ["originsDigest"]},
    ]


Digest = Annotated[StrictStr, Field(pattern=digests.DIGEST_PATTERN)]
OriginId = Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]
# [originId, sequence]: OpenAPI 3.0 has no tuple schema, so the pair is described as a two-item array.
OriginVersion = Annotated[
    tuple[OriginId, Annotated[StrictInt, Field(ge=0, le=2**63 - 1)]],
    WithJsonSchema(
        {
            "type": "array",
            "minItems": 2,
            "maxItems": 2,
            "items": {"oneOf": [{"type": "string", "pattern": "^[0-9a-f]{32}$"}, {"type": "integer", "minimum": 0}]},
            "description": "[originId, sequence]",
        }
    ),
]


class SignedSetWire(BaseModel):
    """A signed set as it travels: relays pass `set` on as they got it (peers.gossip.records)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    set: Annotated[StrictStr, Field(max_length=6 * 1024 * 1024, pattern=r"^[A-Za-z0-9+/]*={0,2}$")] = Field(
        description="base64 of the origin's signed body: JSON with v, originId, publicKey, url, name, sequence, "
        "issuedAt, expiresAt (ms since the epoch) and advertisements"
    )
    signature: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{128}$")] = Field(
        description="Ed25519 (hex), by the origin's key, of `sorcha-advertisement-set/v1` + NUL + the body"
    )


class GossipMessage(BaseModel):
    """A node's signed message. Three forms: the original (`advertisements`), by digest
    (`advertisementsDigest`), and relay (`originsDigest`, with `originVersions` and `records`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_set_or_digest)

    peerId: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]
    publicKey: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
    url: PeerUrl
    name: Annotated[StrictStr, Field(max_length=100, pattern=TEXT_PATTERN)] = ""
    sequence: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    sentAt: Annotated[
        AwareDatetime,
        Field(
            strict=True,
            description="the sender's clock; within ADVERTISEMENT_TTL before and CLOCK_SKEW_MAX after the receiver's",
            json_schema_extra={"x-earliest": "now - ADVERTISEMENT_TTL", "x-latest": "now + CLOCK_SKEW_MAX"},
        ),
    ]
    # The three below may be left out (None then) but never sent as null (refused below).
    advertisements: list[GossipAdvertisement] | None = Field(
        default=None,
        json_schema_extra=_no_default,
        max_length=settings.SORCHA_BULK_MAX_ITEMS,
        description="the sender's complete set of its own public advertisements; left out when "
        "`advertisementsDigest` stands for it (a set the receiver holds)",
    )
    advertisementsDigest: Digest | None = Field(
        default=None,
        json_schema_extra=_no_default,
        description="SHA-256 (lowercase hex) of the sender's set: of the JSON array, without whitespace, of "
        "`[registerId, name, description, latestVersion, latestDocketVersion, isFullReplica]` sorted by "
        "registerId; with `advertisements` it must be theirs (400 otherwise)",
    )
    heldDigest: Digest | None = Field(
        default=None,
        json_schema_extra=_no_default,
        description="the `advertisementsDigest` of the addressee's set the sender holds: in a request, the "
        "reply may then carry the digest alone; in a reply, the set the replier holds now",
    )
    peers: list[PeerReference] = Field(default_factory=list, max_length=MAX_PEERS_IN_MESSAGE)
    # Relayed gossip (sent only to nodes that sent the relay header or answered `originsDigest`).
    originsDigest: Digest | None = Field(
        default=None,
        json_schema_extra=_no_default,
        description="SHA-256 (hex) of the text of `originId:sequence` lines, sorted, one per unexpired set held; "
        "in a relay exchange it stands for the sender's own list",
    )
    originVersions: list[OriginVersion] | None = Field(
        default=None,
        json_schema_extra=_no_default,
        max_length=MAX_VERSIONS,
        description="in an answer whose digest differs, every (originId, sequence) held; in the message after "
        "it, the origins wanted, each with the sequence held (0: none)",
    )
    records: list[SignedSetWire] | None = Field(
        default=None,
        json_schema_extra=_no_default,
        max_length=MAX_VERSIONS,
        description="signed sets the addressee lacks or holds older",
    )

    @field_validator(
        "advertisements",
        "advertisementsDigest",
        "heldDigest",
        "originsDigest",
        "originVersions",
        "records",
        mode="before",
    )
    @classmethod
    def _left_out_never_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, never null")
        return value

    @property
    def relay(self) -> bool:
        """A relay exchange's message: the sender's own list travels as one of the signed sets."""
        return self.originsDigest is not None and self.advertisements is None and self.advertisementsDigest is None

    def rows(self) -> list[digests.Row]:
        """The listed set as the digest sees it: one row per register, the last listed winning (as stored)."""
        by_id = {
            ad.registerId: (
                ad.registerId,
                ad.name,
                ad.description,
                ad.latestVersion,
                ad.latestDocketVersion,
                ad.isFullReplica,
            )
            for ad in self.advertisements or ()
        }
        return list(by_id.values())


@dataclass(frozen=True)
class SignedMessage:
    body: bytes
    signature: str


@dataclass(frozen=True)
class LocalSet:
    """This node's own public advertisements as messages list them (sorted by id), and their digest."""

    advertisements: list[dict[str, Any]]
    digest: str


_local_sets: digests.EntryCache[LocalSet] = digests.EntryCache(max_keys=1)
_held_digests: digests.EntryCache[str] = digests.EntryCache(max_keys=4 * settings.GOSSIP_MAX_PEERS)


def _build_local_set(entries: list[Entry]) -> LocalSet:
    advertisements = [
        {
            "registerId": entry.register_id,
            "name": entry.fields["name"],
            "description": entry.fields["description"],
            "latestVersion": entry.fields["latestVersion"],
            "latestDocketVersion": entry.fields["latestDocketVersion"],
            "isFullReplica": entry.fields["isFullReplica"],
        }
        for entry in sorted(entries, key=lambda entry: entry.register_id)
    ]
    return LocalSet(advertisements, digests.digest_of_entries(entries))


def local_set() -> LocalSet:
    """This node's set now; built again only when a local advertisement changed."""
    entries = get_store().local_advertisements()
    return _local_sets.get("", entries, lambda: _build_local_set(entries))


def held_digest(peer_id: str, entries: list[Entry] | None = None) -> str:
    """The digest of the set of `peer_id`'s advertisements this node holds now (in the store, unexpired)."""
    held = get_store().remote_advertisements(peer_id) if entries is None else entries
    return _held_digests.get(peer_id, held, lambda: digests.digest_of_entries(held))


def build_message(
    local: LocalSet | None = None,
    *,
    digest_aware: bool = False,
    full: bool = True,
    held: str | None = None,
    origins_digest: str | None = None,
) -> SignedMessage:
    """This node's own signed message: its local public advertisements and the peers it has verified.

    Without `digest_aware` it is the original message (the addressee may not know the digest
    fields: they would be refused). With it, the message carries `advertisementsDigest` and the
    digest `held` of the addressee's set; with `full=False` the digest stands for the set.
    `origins_digest`: to a node that sent the relay header, this node says it relays too.
    """
    local = local or local_set()
    digest_only = digest_aware and not full
    message = _envelope(few_peers=digest_only)
    peers = message.pop("peers")  # last, as the original message has it
    if not digest_only:
        message["advertisements"] = local.advertisements
    if digest_aware:
        message["advertisementsDigest"] = local.digest
        if held is not None:
            message["heldDigest"] = held
    if origins_digest is not None:
        message["originsDigest"] = origins_digest
    message["peers"] = peers
    return _signed(message)


def build_relay_message(step: dict[str, Any]) -> SignedMessage:
    """A relay exchange's message: the envelope and one anti-entropy step (peers.gossip.antientropy)."""
    message = {**_envelope(few_peers=True), **step}
    if not message["peers"]:
        del message["peers"]  # an unchanged exchange is one digest each way: every byte counts
    return _signed(message)


def _envelope(few_peers: bool) -> dict[str, Any]:
    identity = get_identity()
    # Only URLs this node has proven (called and got their owner's signed reply) are passed on.
    known = list(
        Peer.objects.filter(banned=False, peer_id__isnull=False, url__isnull=False, last_exchange_result=Peer.Result.OK)
        .exclude(peer_id=identity.peer_id)
        .values_list("url", flat=True)[:MAX_PEERS_IN_MESSAGE]
    )
    if few_peers and len(known) > MAX_PEERS_IN_DIGEST_MESSAGE:
        known = random.sample(known, MAX_PEERS_IN_DIGEST_MESSAGE)
    return {
        "peerId": identity.peer_id,
        "publicKey": identity.public_key,
        "url": settings.PEER_PUBLIC_URL,
        "name": settings.NODE_NAME,
        "sequence": next_sequence(),
        "sentAt": timezone.now().isoformat(),
        "peers": [{"url": url} for url in known],
    }


def _signed(message: dict[str, Any]) -> SignedMessage:
    identity = get_identity()
    body = orjson.dumps(message)
    return SignedMessage(body, sign(identity, body))


def _refuse(status: int, detail: str, reason: str) -> GossipRejected:
    return GossipRejected(status, detail, reason)


def verify_message(body: bytes, signature: str) -> GossipMessage:
    """Parse and authenticate a message; GossipRejected (nothing changed) when it is not acceptable."""
    if len(body) > settings.GOSSIP_MAX_BODY_BYTES:
        raise _refuse(
            413, f"body: {len(body)} bytes is over the gossip limit of {settings.GOSSIP_MAX_BODY_BYTES}", "too_large"
        )
    try:
        message = GossipMessage.model_validate_json(body)
    except ValidationError as exc:
        raise _refuse(400, describe_validation_error(exc), "malformed") from exc
    if message.advertisements is None and message.advertisementsDigest is None and message.originsDigest is None:
        raise _refuse(400, "advertisements: Field required (or advertisementsDigest, standing for them)", "malformed")
    if peer_id_for(message.publicKey) != message.peerId:
        raise _refuse(403, "peerId: does not derive from publicKey", "bad_signature")
    if not signature or not signature_valid(message.publicKey, body, signature):
        raise _refuse(403, f"{SIGNATURE_HEADER}: signature does not verify against publicKey", "bad_signature")
    if message.peerId == get_identity().peer_id:
        raise _refuse(400, "peerId: this message is from this node itself", "self")
    _check_sent_at(message.sentAt)
    # A digest that is not its list's would make this node remember a set it does not hold.
    if (
        message.advertisements is not None
        and message.advertisementsDigest is not None
        and digests.digest_of_rows(message.rows()) != message.advertisementsDigest
    ):
        raise _refuse(400, "advertisementsDigest: is not the digest of the advertisements listed", "malformed")
    return message


def _check_sent_at(sent_at: datetime) -> None:
    micros = moment_micros(sent_at)
    problem = moment_problem(micros)
    if problem is None and micros < now_micros() - int(settings.ADVERTISEMENT_TTL * 1_000_000):
        problem = f"is older than ADVERTISEMENT_TTL ({settings.ADVERTISEMENT_TTL:g} s)"
    if problem is not None:
        raise _refuse(400, f"sentAt: {problem}", "stale_sent_at")


def own_url() -> str:
    try:
        return outbound.normalise_url(settings.PEER_PUBLIC_URL)
    except ValueError:
        return settings.PEER_PUBLIC_URL.rstrip("/")
