"""A node's signed advertisement set: the record every node relays unchanged (ARCHITECTURE §4).

An origin publishes its public advertisements as one record, in the manner of a libp2p signed
envelope: the body is JSON bytes holding the origin's id and key, URL, name, a sequence that only
grows, `issuedAt`, `expiresAt` (both ms since the epoch) and the advertisements; the signature is
Ed25519 over a domain-separation prefix followed by exactly those bytes. On the wire a record is
`{"set": <base64 of the body>, "signature": <hex>}`: relays forward the body's bytes as they got
them and never encode it again, so the origin's signature holds at every hop.

Parsing a record checks its shape, that the origin id is the digest of the key and that the
signature verifies; whether it is *accepted* (newer, within the time bounds, room) is decided in
`peers.gossip.origins`. Nothing here touches the database, Redis or Django's settings, so the
network benchmark runs this very code for a thousand nodes in one process.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from sorcha_site.bounds import MAX_VERSION, NAME_PATTERN, REGISTER_ID_CHARS, TEXT_PATTERN

# What the signature covers starts with this: a set's signature can never pass for a message's.
DOMAIN = b"sorcha-advertisement-set/v1\x00"
RECORD_VERSION = 1
# A set's body is bounded before anything else is read (a set of 10,000 advertisements is ~3 MB).
MAX_SET_BYTES = 4 * 1024 * 1024
MAX_SET_ADVERTISEMENTS = 10_000

GossipVersion = Annotated[StrictInt, Field(ge=0, le=MAX_VERSION)]
Millis = Annotated[StrictInt, Field(ge=0, le=2**53)]


class GossipAdvertisement(BaseModel):
    """One advertisement as a node states it to others (in a set, and in the original message)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    registerId: Annotated[StrictStr, Field(pattern=rf"^{REGISTER_ID_CHARS}$")]
    # The Peer API's rules: a name has a visible character, no text has a NUL (PostgreSQL refuses it).
    name: Annotated[StrictStr, Field(max_length=38, pattern=NAME_PATTERN)]
    description: Annotated[StrictStr, Field(max_length=2048, pattern=TEXT_PATTERN)] = ""
    latestVersion: GossipVersion = 0
    latestDocketVersion: GossipVersion = 0
    isFullReplica: StrictBool = True


class SetBody(BaseModel):
    """The signed body of a set, as its origin wrote it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    v: Annotated[StrictInt, Field(ge=RECORD_VERSION, le=RECORD_VERSION)]
    originId: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]
    publicKey: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
    url: Annotated[StrictStr, Field(max_length=300, pattern=TEXT_PATTERN)]
    name: Annotated[StrictStr, Field(max_length=100, pattern=TEXT_PATTERN)] = ""
    sequence: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    issuedAt: Millis
    expiresAt: Millis
    advertisements: list[GossipAdvertisement] = Field(max_length=MAX_SET_ADVERTISEMENTS)


class RecordRefused(Exception):
    """A set that changes nothing; `reason` is the metric label, the message names the field."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class SignedSet:
    """A set as it travels: the body's bytes and the origin's signature over them."""

    body: bytes
    signature: bytes

    def wire(self) -> dict[str, str]:
        return {"set": base64.b64encode(self.body).decode("ascii"), "signature": self.signature.hex()}

    @classmethod
    def from_wire(cls, item: Any) -> SignedSet:
        """The bytes of a wire item; RecordRefused (reason `malformed`) naming the field otherwise."""
        if not isinstance(item, dict) or set(item) != {"set", "signature"}:
            raise RecordRefused("malformed", "records[]: must hold exactly `set` and `signature`")
        encoded, signature = item["set"], item["signature"]
        if not isinstance(encoded, str) or len(encoded) > MAX_SET_BYTES * 4 // 3 + 4:
            raise RecordRefused("malformed", f"records[].set: must be base64 of at most {MAX_SET_BYTES} bytes")
        if not isinstance(signature, str) or len(signature) != 128:
            raise RecordRefused("malformed", "records[].signature: must be 128 hex characters")
        try:
            body = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise RecordRefused("malformed", f"records[].set: not base64 ({exc})") from exc
        try:
            return cls(body, bytes.fromhex(signature))
        except ValueError as exc:
            raise RecordRefused("malformed", f"records[].signature: not hex ({exc})") from exc


@dataclass(frozen=True)
class OriginSet:
    """A set whose signature verified: what it says, and the exact bytes to relay."""

    origin_id: str
    public_key: str
    url: str
    name: str
    sequence: int
    issued_at_ms: int
    expires_at_ms: int
    advertisements: tuple[GossipAdvertisement, ...]
    signed: SignedSet


def origin_id_for(public_key_hex: str) -> str:
    """An origin's id is a digest of its public key, so no node can speak under another's id."""
    return hashlib.sha256(bytes.fromhex(public_key_hex)).hexdigest()[:32]


def publish(
    private_key_hex: str,
    *,
    url: str,
    name: str,
    sequence: int,
    issued_at_ms: int,
    ttl_ms: int,
    advertisements: list[dict[str, Any]],
) -> SignedSet:
    """The signed set of a node's own advertisements (`advertisements` as GossipAdvertisement fields)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key_hex))
    public_key = key.public_key().public_bytes_raw().hex()
    body = orjson.dumps(
        {
            "v": RECORD_VERSION,
            "originId": origin_id_for(public_key),
            "publicKey": public_key,
            "url": url,
            "name": name,
            "sequence": sequence,
            "issuedAt": issued_at_ms,
            "expiresAt": issued_at_ms + ttl_ms,
            "advertisements": advertisements,
        }
    )
    return SignedSet(body, key.sign(DOMAIN + body))


# Sets this small have their answer kept (a node hears the same set from several relays, and only
# the first costs a verification); at most 1,024 of them, so the cache holds at most ~16 MiB of bodies.
CACHED_SET_BYTES = 16 * 1024


def parse(signed: SignedSet) -> OriginSet:
    """The set a signed record holds, once its shape, origin id and signature check out (a pure
    function of the bytes: the answer for a small set is kept)."""
    if len(signed.body) <= CACHED_SET_BYTES:
        return _parse_kept(signed.body, signed.signature)
    return _parse(signed.body, signed.signature)


@functools.lru_cache(maxsize=1024)
def _parse_kept(body: bytes, signature: bytes) -> OriginSet:
    return _parse(body, signature)


def _parse(body: bytes, signature: bytes) -> OriginSet:
    if len(body) > MAX_SET_BYTES:
        raise RecordRefused("too_large", f"records[].set: {len(body)} bytes is over the limit of {MAX_SET_BYTES}")
    try:
        fields = SetBody.model_validate_json(body)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(part) for part in problem["loc"])
        raise RecordRefused("malformed", f"records[].set.{where}: {problem['msg']}") from exc
    if origin_id_for(fields.publicKey) != fields.originId:
        raise RecordRefused("bad_signature", "records[].set.originId: does not derive from publicKey")
    try:
        Ed25519PublicKey.from_public_bytes(bytes.fromhex(fields.publicKey)).verify(signature, DOMAIN + body)
    except (ValueError, InvalidSignature) as exc:
        raise RecordRefused("bad_signature", "records[].signature: does not verify against publicKey") from exc
    return OriginSet(
        origin_id=fields.originId,
        public_key=fields.publicKey,
        url=fields.url,
        name=fields.name,
        sequence=fields.sequence,
        issued_at_ms=fields.issuedAt,
        expires_at_ms=fields.expiresAt,
        advertisements=tuple(fields.advertisements),
        signed=SignedSet(body, signature),
    )
