"""Signed push-pull gossip: each node tells its peers its complete set of its own public registers.

A message carries the sender's identity (id, public key, URL, name), a sequence number that
only grows, its local public advertisements and the URLs of peers it knows. The body is
signed with the sender's Ed25519 key (header `X-Sorcha-Signature`), and the sender's id is a
digest of that key, so a node can only ever speak for itself. A valid message replaces the
sender's remote set in the store; the reply is the receiver's own message of the same shape.

Digests (`peers.digests`): a node that speaks them says so with the `X-Sorcha-Gossip-Digests: 1`
request header and puts `advertisementsDigest` beside its list; each side tells the other which
digest of the other's set it holds (`heldDigest`). While a peer holds this node's current set,
the message carries the digest alone, and the receiver refreshes the set it holds — if what it
holds still has that digest; otherwise it answers 409 with `needSet: true` and the sender sends
the set at once, within the same exchange. A peer that never says it speaks digests gets the
original message, byte for byte the shape it knows.

What a sender says about its URL is only a claim: a URL is bound to a peer id once this node
has POSTed to it and received that id's signed reply (ARCHITECTURE §4, "Admission and bounds").
Who may send, how often and how much is decided in `peers.admission`; outbound calls go
through `peers.outbound` (vetted addresses, one deadline).
"""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
from django.conf import settings
from django.db import close_old_connections, connection, transaction
from django.db.models import Q
from django.utils import timezone
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
    ValidationError,
    field_validator,
)

from peers import admission, digests, history, outbound
from peers.admission import GossipRejected
from peers.api.schemas import NAME_PATTERN, REGISTER_ID_PATTERN, TEXT_PATTERN, describe_validation_error
from peers.identity import get_identity, next_sequence, peer_id_for, sign, signature_valid
from peers.models import Peer
from peers.store import AdvertisementInput, Entry, get_store
from sorcha_site.bounds import MAX_VERSION, moment_micros, moment_problem, now_micros
from sorcha_site.metrics import record_gossip_exchange, record_gossip_refusal

__all__ = ["GossipRejected"]

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sorcha-Signature"
# Sent by nodes that understand digests; a receiver answers them with `advertisementsDigest` and `heldDigest`.
DIGESTS_HEADER = "X-Sorcha-Gossip-Digests"
EXCHANGE_PATH = "/api/peers/exchange"
MAX_PEERS_IN_MESSAGE = 100
# A digest-only message passes on a few known URLs (a different sample each time), not all of them:
# discovery goes on at a bounded cost, and full messages still carry every one.
MAX_PEERS_IN_DIGEST_MESSAGE = 3
NEED_SET = "need_set"
# A round ends within one exchange deadline plus this, whatever the peers do.
ROUND_MARGIN = 2.0
_apply_lock = threading.Lock()


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


class GossipAdvertisement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    registerId: Annotated[StrictStr, Field(pattern=REGISTER_ID_PATTERN)]
    # The Peer API's rules: a name has a visible character, no text has a NUL (PostgreSQL refuses it).
    name: Annotated[StrictStr, Field(max_length=38, pattern=NAME_PATTERN)]
    description: Annotated[StrictStr, Field(max_length=2048, pattern=TEXT_PATTERN)] = ""
    latestVersion: GossipVersion = 0
    latestDocketVersion: GossipVersion = 0
    isFullReplica: StrictBool = True


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
    schema["anyOf"] = [{"required": ["advertisements"]}, {"required": ["advertisementsDigest"]}]


Digest = Annotated[StrictStr, Field(pattern=digests.DIGEST_PATTERN)]


class GossipMessage(BaseModel):
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

    @field_validator("advertisements", "advertisementsDigest", "heldDigest", mode="before")
    @classmethod
    def _left_out_never_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("may be left out, never null")
        return value

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
    local: LocalSet | None = None, *, digest_aware: bool = False, full: bool = True, held: str | None = None
) -> SignedMessage:
    """This node's own signed message: its local public advertisements and the peers it has verified.

    Without `digest_aware` it is the original message (the addressee may not know the digest
    fields: they would be refused). With it, the message carries `advertisementsDigest` and the
    digest `held` of the addressee's set; with `full=False` the digest stands for the set.
    """
    identity = get_identity()
    local = local or local_set()
    digest_only = digest_aware and not full
    # Only URLs this node has proven (called and got their owner's signed reply) are passed on.
    known = list(
        Peer.objects.filter(banned=False, peer_id__isnull=False, url__isnull=False, last_exchange_result=Peer.Result.OK)
        .exclude(peer_id=identity.peer_id)
        .values_list("url", flat=True)[:MAX_PEERS_IN_MESSAGE]
    )
    if digest_only and len(known) > MAX_PEERS_IN_DIGEST_MESSAGE:
        known = random.sample(known, MAX_PEERS_IN_DIGEST_MESSAGE)
    message: dict[str, Any] = {
        "peerId": identity.peer_id,
        "publicKey": identity.public_key,
        "url": settings.PEER_PUBLIC_URL,
        "name": settings.NODE_NAME,
        "sequence": next_sequence(),
        "sentAt": timezone.now().isoformat(),
    }
    if not digest_only:
        message["advertisements"] = local.advertisements
    if digest_aware:
        message["advertisementsDigest"] = local.digest
        if held is not None:
            message["heldDigest"] = held
    message["peers"] = [{"url": url} for url in known]
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
    if message.advertisements is None and message.advertisementsDigest is None:
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


@dataclass(frozen=True)
class Accepted:
    """A message applied: the sender's row (as it stands after) and the message itself."""

    peer: Peer
    message: GossipMessage

    def held_digest(self) -> str:
        """The digest of the sender's set this node holds now: the one just applied."""
        if self.message.advertisementsDigest is not None:
            return self.message.advertisementsDigest
        return digests.digest_of_rows(self.message.rows())


def accept_message(
    body: bytes, signature: str, *, source: str | None = None, contacted_url: str | None = None
) -> Accepted:
    """Verify a peer's message and apply it; raises GossipRejected (and changes nothing) otherwise.

    `source`: the address an inbound message came from (rate-limited). `contacted_url`: the URL
    this node POSTed to when `body` is the reply, which binds that URL to the replying peer.
    A digest-only message applies the set held for that peer again (its TTL refreshed) when what
    is held has that digest; otherwise GossipRejected with reason `need_set` (status 409).
    """
    if source is not None:
        admission.check_address_rate(source)
    message = verify_message(body, signature)
    if source is not None:
        admission.check_peer_rate(message.peerId)
    existing = Peer.objects.filter(peer_id=message.peerId).first()
    if existing is not None:
        admission.check_existing(existing)
        if existing.last_sequence >= message.sequence:
            raise _replayed(message.sequence)
    elif message.advertisements is None:
        raise _need_set()  # a stranger's digest stands for nothing held here
    # One message at a time per process from the room check to the store write, so concurrent
    # messages cannot each see room and together pass GOSSIP_MAX_REMOTE_ADS.
    with _apply_lock:
        ads = _inputs(message)
        _check_remote_room(message.peerId, len(ads))
        # The replay check comes before anything is recorded: a new sender's row is created with its
        # sequence, a known one's sequence is moved forward by compare-and-set, or nothing happens.
        if existing is None:
            peer = admission.admit_new_sender(
                message.peerId, message.publicKey, message.name, message.url, message.sequence
            )
        else:
            peer = existing
            # Not banned (nor un-admitted) meanwhile: a ban between the check above and here wins.
            accepted = Peer.objects.filter(pk=peer.pk, last_sequence__lt=message.sequence, banned=False).update(
                last_sequence=message.sequence
            )
            if not accepted:
                peer.refresh_from_db()
                admission.check_existing(peer)
                raise _replayed(message.sequence)
        result = get_store().replace_remote(message.peerId, ads)
        if Peer.objects.filter(pk=peer.pk, banned=True).exists():  # banned while this message was applied
            get_store().forget_peer(message.peerId)
            raise GossipRejected(403, "peerId: this peer is banned", "banned")
        Peer.objects.filter(pk=peer.pk).update(
            last_seen=timezone.now(),
            advertisements_received=len(ads),
            name=message.name,
            claimed_url=message.url,
            consecutive_failures=0,  # it is alive: contact it again at the next round
            next_attempt_at=None,
            last_error="",
        )
    if contacted_url is not None:
        _bind_url(peer, contacted_url)
    _learn_peers(message.peers)
    logger.log(
        logging.INFO if result.changed else logging.DEBUG,
        "event=gossip_accepted peer_id=%s sequence=%d advertisements=%d added=%d updated=%d removed=%d digest_only=%s",
        message.peerId,
        message.sequence,
        len(ads),
        result.added,
        result.updated,
        result.removed,
        message.advertisements is None,
    )
    # An operator may forget the row meanwhile: the message was applied all the same.
    return Accepted(Peer.objects.filter(pk=peer.pk).first() or peer, message)


def _inputs(message: GossipMessage) -> list[AdvertisementInput]:
    """What the message states: its list, or — digest-only — the set held for the sender, if it has that digest.

    The held set is read from the store, so a set forgotten, banned, expired or lost with Redis
    can never be refreshed by a digest: the sender is asked for it instead.
    """
    if message.advertisements is not None:
        return [
            AdvertisementInput(
                ad.registerId,
                True,
                name=ad.name,
                description=ad.description,
                latest_version=ad.latestVersion,
                latest_docket_version=ad.latestDocketVersion,
                is_full_replica=ad.isFullReplica,
            )
            for ad in message.advertisements
        ]
    held = get_store().remote_advertisements(message.peerId)
    if held_digest(message.peerId, held) != message.advertisementsDigest:
        raise _need_set()
    return [
        AdvertisementInput(
            entry.register_id,
            True,
            name=entry.fields["name"],
            description=entry.fields["description"],
            latest_version=entry.fields["latestVersion"],
            latest_docket_version=entry.fields["latestDocketVersion"],
            is_full_replica=entry.fields["isFullReplica"],
        )
        for entry in held
    ]


def _need_set() -> GossipRejected:
    return _refuse(
        409, "advertisementsDigest: this node does not hold a set of yours with this digest; send the set", NEED_SET
    )


def _replayed(sequence: int) -> GossipRejected:
    return _refuse(409, f"sequence: {sequence} is not newer than the last accepted from this peer", "replayed")


def _check_remote_room(peer_id: str, count: int) -> None:
    """The message may not take the remote advertisements held past GOSSIP_MAX_REMOTE_ADS."""
    store = get_store()
    held = int(store.status()["remoteAdvertisements"])
    own = len(store.remote_advertisements(peer_id))
    after = held - own + count
    if count > own and after > settings.GOSSIP_MAX_REMOTE_ADS:
        raise _refuse(
            413,
            f"advertisements: {count} would make {after} remote advertisements, over "
            f"GOSSIP_MAX_REMOTE_ADS ({settings.GOSSIP_MAX_REMOTE_ADS})",
            "remote_ads_cap",
        )


def _bind_url(peer: Peer, url: str) -> None:
    """`url` answered with `peer`'s signed reply: it is that peer's now, and no other row's."""
    with transaction.atomic():
        others = list(Peer.objects.filter(url=url).exclude(pk=peer.pk))
        was_seed = any(other.is_seed for other in others)
        for other in others:
            if other.peer_id is None:
                other.delete()  # a seed or learnt URL row, answered at last: this peer's row takes over
            else:
                Peer.objects.filter(pk=other.pk).update(url=None)  # it answers as someone else now
                logger.warning("event=peer_url_moved url=%s from=%s to=%s", url, other.peer_id, peer.peer_id)
        changes: dict[str, Any] = {"url": url}
        if was_seed:
            changes["is_seed"] = True
        Peer.objects.filter(pk=peer.pk).update(**changes)


def own_url() -> str:
    try:
        return outbound.normalise_url(settings.PEER_PUBLIC_URL)
    except ValueError:
        return settings.PEER_PUBLIC_URL.rstrip("/")


def _learn_peers(references: list[PeerReference]) -> None:
    """Add URLs we hear of (bounded, never evicting); they prove who they are when contacted."""
    own = own_url()
    for reference in references:
        url = reference.url
        if url == own or Peer.objects.filter(Q(url=url) | Q(claimed_url=url)).exists():
            continue
        if not admission.room_for_learnt_url():
            break
        Peer.objects.get_or_create(url=url)


def ensure_seeds() -> None:
    own = own_url()
    for url in outbound.seed_urls():
        if url != own and not Peer.objects.filter(url=url, is_seed=True).exists():
            Peer.objects.update_or_create(url=url, defaults={"is_seed": True})


def backoff_delay(failures: int) -> float:
    return float(min(settings.GOSSIP_BACKOFF_MAX, settings.GOSSIP_BACKOFF_BASE * 2 ** max(failures - 1, 0)))


def build_reply(accepted: Accepted, digest_aware: bool) -> SignedMessage:
    """This node's answer to an accepted message: the digest alone when the sender holds this node's set."""
    if not digest_aware:
        return build_message()
    local = local_set()
    return build_message(
        local, digest_aware=True, full=accepted.message.heldDigest != local.digest, held=accepted.held_digest()
    )


# ---------------------------------------------------------------- outbound exchanges
def exchange_with(peer: Peer, local: LocalSet | None = None, deadline: float | None = None) -> str:
    """One push-pull exchange before `deadline` (monotonic); records the outcome on the row and in its history.

    Returns the outcome: ok, refused_address, unreachable, rejected or reply_refused. With a peer
    that speaks digests, an unchanged set travels as its digest; when either side turns out not to
    hold the other's set, the exchange is sent once more, with the sets, before the same deadline.
    """
    local = local or local_set()
    deadline = deadline if deadline is not None else time.monotonic() + settings.GOSSIP_EXCHANGE_DEADLINE
    now, started, tally = timezone.now(), time.monotonic(), history.ExchangeTally()
    outcome = _exchange(peer, local, deadline, now, tally)
    history.record_exchange(peer, "outbound", outcome, now, time.monotonic() - started, tally)
    return outcome


def _exchange(peer: Peer, local: LocalSet, deadline: float, now: datetime, tally: history.ExchangeTally) -> str:
    url = peer.contact_url
    digest_aware = bool(peer.acknowledged_digest)
    full = peer.acknowledged_digest != local.digest
    held = held_digest(peer.peer_id) if digest_aware and peer.peer_id else None
    try:
        target = outbound.resolve(url, EXCHANGE_PATH, deadline)
    except outbound.OutboundRefused as exc:
        return _failed(peer, Peer.Result.REJECTED, str(exc), now, "refused_address", tally)
    except outbound.ExchangeFailed as exc:
        return _failed(peer, Peer.Result.UNREACHABLE, str(exc), now, "unreachable", tally)
    for last_try in (False, True):
        message = build_message(local, digest_aware=digest_aware, full=full, held=held)
        tally.bytes_sent += len(message.body)
        try:
            reply = _post(target, message, deadline)
        except outbound.ExchangeFailed as exc:
            if not full and not last_try and _asks_for_set(exc):
                full = True  # the peer lost our set (restart, expiry, forgot us): send it now
                continue
            result = Peer.Result.REJECTED if exc.status is not None else Peer.Result.UNREACHABLE
            return _failed(peer, result, str(exc), now, "rejected" if exc.status is not None else "unreachable", tally)
        tally.bytes_received += len(reply.body)
        try:
            accepted = accept_message(reply.body, reply.signature, contacted_url=url)
        except GossipRejected as exc:
            if exc.reason == NEED_SET and not last_try:
                # The reply's digest stands for a set of the peer's no longer held here: ask for it. The
                # peer holds ours now (it accepted our message), so ours travels as its digest.
                full, held = False, None
                continue
            record_gossip_refusal(exc.reason)
            error = f"reply refused ({exc.status}): {exc.detail[:200]}"
            return _failed(peer, Peer.Result.REJECTED, error, now, tally=tally)
        break
    replier = accepted.peer
    if peer.peer_id is not None and replier.peer_id != peer.peer_id:
        # The URL answered as another peer: its reply counted for that peer, not for this row.
        Peer.objects.filter(pk=peer.pk, claimed_url=url).update(claimed_url="")
        return _failed(peer, Peer.Result.REJECTED, f"{url} answered as peer {replier.peer_id}", now, tally=tally)
    Peer.objects.filter(pk=replier.pk).update(
        last_exchange_at=now,
        last_exchange_result=Peer.Result.OK,
        consecutive_failures=0,
        next_attempt_at=None,
        last_error="",
        # A reply without heldDigest is a peer that does not speak digests (any more): the original message.
        acknowledged_digest=accepted.message.heldDigest or "",
    )
    record_gossip_exchange("ok")
    tally.peer_pk = replier.pk
    tally.advertisements = replier.advertisements_received
    tally.digest_only = accepted.message.advertisements is None
    return "ok"


def _post(target: outbound.Target, message: SignedMessage, deadline: float) -> outbound.Reply:
    return outbound.post(
        target,
        message.body,
        {"Content-Type": "application/json", SIGNATURE_HEADER: message.signature, DIGESTS_HEADER: "1"},
        deadline,
        settings.GOSSIP_MAX_BODY_BYTES,
        SIGNATURE_HEADER,
    )


def _asks_for_set(exc: outbound.ExchangeFailed) -> bool:
    """A 409 whose body says `needSet: true`: the receiver does not hold the set the digest stands for."""
    if exc.status != 409:
        return False
    try:
        answer = orjson.loads(exc.body)
    except orjson.JSONDecodeError:
        return False
    return isinstance(answer, dict) and answer.get("needSet") is True


def _failed(
    peer: Peer,
    result: str,
    error: str,
    now: datetime,
    outcome: str = "reply_refused",
    tally: history.ExchangeTally | None = None,
) -> str:
    """Back the row off; `error` is a status and a short reason of ours, never the peer's body."""
    if tally is not None:
        tally.error = error[:300]
    failures = peer.consecutive_failures + 1
    delay = backoff_delay(failures) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    Peer.objects.filter(pk=peer.pk).update(
        last_exchange_at=now,
        last_exchange_result=result,
        last_error=error[:300],
        consecutive_failures=failures,
        next_attempt_at=now + timedelta(seconds=delay),
    )
    record_gossip_exchange(outcome)
    logger.warning(
        "event=gossip_exchange_failed peer_url=%s peer_id=%s result=%s failures=%d retry_in=%.1fs error=%r",
        peer.contact_url,
        peer.peer_id,
        result,
        failures,
        delay,
        error[:300],
    )
    return outcome


def _due_peers(force: bool) -> list[Peer]:
    """Peers to contact, each URL once, in an order no peer picks: seeds and proven peers first."""
    own_id = get_identity().peer_id
    own = own_url()
    due = Peer.objects.filter(banned=False).exclude(peer_id=own_id)
    if not force:
        due = due.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
    candidates = [peer for peer in due if peer.contact_url and peer.contact_url != own]
    candidates = [peer for peer in candidates if peer.peer_id is None or admission.is_admitted(peer)]
    random.shuffle(candidates)
    candidates.sort(key=lambda peer: (not peer.is_seed, peer.url is None, peer.last_exchange_result != "ok"))
    by_url: dict[str, Peer] = {}
    for peer in candidates:
        by_url.setdefault(peer.contact_url, peer)
    return list(by_url.values())


_one_round_at_a_time = threading.Lock()


def gossip_round(force: bool = False) -> dict[str, int]:
    """Exchange with every known, non-banned peer not backed off (all of them with `force`).

    Peers are contacted concurrently (GOSSIP_ROUND_WORKERS at once) and the round ends within
    GOSSIP_EXCHANGE_DEADLINE plus a small margin: peers not reached by then wait for the next one.
    One round at a time per process: a call while a round is in flight waits for it to end (two
    rounds side by side would send every peer two messages at once, and one would be refused).
    """
    waited = _one_round_at_a_time.acquire(timeout=settings.GOSSIP_EXCHANGE_DEADLINE + ROUND_MARGIN + 5)
    try:
        return _run_round(force)
    finally:
        if waited:
            _one_round_at_a_time.release()


def _run_round(force: bool) -> dict[str, int]:
    ensure_seeds()
    peers = _due_peers(force)
    outcome = {"peers": len(peers), "ok": 0, "failed": 0, "skipped": 0}
    if not peers:
        return outcome
    local = local_set()  # one set for all; each peer gets its own message (digest or set, its own sequence)
    deadline = time.monotonic() + settings.GOSSIP_EXCHANGE_DEADLINE

    def one(peer: Peer) -> str:
        try:
            if time.monotonic() >= deadline - 0.05:
                return "skipped"
            return exchange_with(peer, local, deadline)
        except Exception:
            logger.exception("event=gossip_exchange_error peer_url=%s", peer.contact_url)
            return "error"
        finally:
            connection.close()

    pool = ThreadPoolExecutor(max_workers=min(settings.GOSSIP_ROUND_WORKERS, len(peers)), thread_name_prefix="gossip")
    try:
        futures = [pool.submit(one, peer) for peer in peers]
        done, _ = wait(futures, timeout=max(deadline - time.monotonic(), 0) + ROUND_MARGIN)
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
    for future in futures:
        result = future.result() if future in done else "skipped"
        key = "ok" if result == "ok" else "skipped" if result == "skipped" else "failed"
        outcome[key] += 1
    logger.info(
        "event=gossip_round peers=%d ok=%d failed=%d skipped=%d",
        outcome["peers"],
        outcome["ok"],
        outcome["failed"],
        outcome["skipped"],
    )
    return outcome


# ---------------------------------------------------------------- triggered rounds
_trigger_lock = threading.Lock()
_trigger_timer: threading.Timer | None = None
_round_running = threading.Lock()
_round_wanted = False


def trigger_round() -> None:
    """After a local change, run a round soon (debounced: changes in quick succession share one).

    Single-flight per process: while a triggered round runs, further changes ask for one more
    round after it, never a second one beside it.
    """
    global _trigger_timer, _round_wanted
    if not settings.PEER_SEEDS and not Peer.objects.filter(banned=False).exists():
        return  # nobody to tell
    with _trigger_lock:
        if _round_running.locked():
            _round_wanted = True
            return
        if _trigger_timer is not None:
            return
        _trigger_timer = threading.Timer(settings.GOSSIP_TRIGGER_DELAY, _run_triggered_round)
        _trigger_timer.daemon = True
        _trigger_timer.start()


def _run_triggered_round() -> None:
    global _trigger_timer, _round_wanted
    with _trigger_lock:
        _trigger_timer = None
        if not _round_running.acquire(blocking=False):
            _round_wanted = True
            return
        _round_wanted = False
    try:
        gossip_round(force=True)
    except Exception:
        logger.exception("event=gossip_triggered_round_failed")
    finally:
        close_old_connections()
        with _trigger_lock:
            _round_running.release()
            again = _round_wanted
            _round_wanted = False
    if again:
        trigger_round()


def triggered_round_running() -> bool:
    return _round_running.locked()


# ---------------------------------------------------------------- operator actions
def describe_peer(peer: Peer) -> dict[str, Any]:
    store = get_store()
    return {
        "id": peer.pk,
        "peerId": peer.peer_id,
        "name": peer.name,
        "url": peer.url,
        "claimedUrl": peer.claimed_url or None,
        "status": peer.status,
        "isSeed": peer.is_seed,
        "approved": peer.approved,
        "banned": peer.banned,
        "firstSeen": peer.first_seen.isoformat() if peer.first_seen else None,
        "lastSeen": peer.last_seen.isoformat() if peer.last_seen else None,
        "lastExchangeAt": peer.last_exchange_at.isoformat() if peer.last_exchange_at else None,
        "lastExchangeResult": peer.last_exchange_result,
        "lastError": peer.last_error,
        "consecutiveFailures": peer.consecutive_failures,
        "nextAttemptAt": peer.next_attempt_at.isoformat() if peer.next_attempt_at else None,
        "advertisementsReceived": peer.advertisements_received,
        "advertisementsHeld": len(store.remote_advertisements(peer.peer_id)) if peer.peer_id else 0,
        "recentExchanges": history.describe_exchanges(peer),
    }


def set_banned(peer: Peer, banned: bool) -> Peer:
    """Banning hides the peer's advertisements at once and refuses its exchanges."""
    Peer.objects.filter(pk=peer.pk).update(banned=banned)
    if banned and peer.peer_id:
        get_store().forget_peer(peer.peer_id)
    logger.info("event=peer_%s peer_id=%s url=%s", "banned" if banned else "unbanned", peer.peer_id, peer.url)
    peer.refresh_from_db()
    return peer


def set_approved(peer: Peer, approved: bool = True) -> Peer:
    """Admits the peer in allowlist mode and keeps its row from eviction in either mode."""
    Peer.objects.filter(pk=peer.pk).update(approved=approved)
    logger.info("event=peer_approved peer_id=%s url=%s approved=%s", peer.peer_id, peer.url, approved)
    peer.refresh_from_db()
    return peer


def forget(peer: Peer) -> None:
    """Drops the row and the peer's advertisements; it may come back as a new peer (ban it to keep it out)."""
    if peer.peer_id:
        get_store().forget_peer(peer.peer_id)
    peer.delete()
    logger.info("event=peer_forgotten peer_id=%s url=%s", peer.peer_id, peer.url)
