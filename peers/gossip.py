"""Signed push-pull gossip: each node tells its peers its complete set of its own public registers.

A message carries the sender's identity (id, public key, URL, name), a sequence number that
only grows, its local public advertisements and the URLs of peers it knows. The body is
signed with the sender's Ed25519 key (header `X-Sorcha-Signature`), and the sender's id is a
digest of that key, so a node can only ever speak for itself. A valid message replaces the
sender's remote set in the store; the reply is the receiver's own message of the same shape.
"""

from __future__ import annotations

import logging
import random
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated, Any

import orjson
import requests
from django.conf import settings
from django.db import close_old_connections
from django.db.models import Q
from django.utils import timezone
from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError

from peers.api.schemas import REGISTER_ID_PATTERN, Version, describe_validation_error
from peers.identity import get_identity, next_sequence, peer_id_for, sign, signature_valid
from peers.models import Peer
from peers.store import AdvertisementInput, get_store
from sorcha_site.metrics import record_gossip_exchange

logger = logging.getLogger(__name__)

SIGNATURE_HEADER = "X-Sorcha-Signature"
EXCHANGE_PATH = "/api/peers/exchange"
MAX_PEERS_IN_MESSAGE = 100
MAX_KNOWN_PEERS = 200


class GossipAdvertisement(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    registerId: Annotated[StrictStr, Field(pattern=REGISTER_ID_PATTERN)]
    name: Annotated[StrictStr, Field(max_length=38)]
    description: Annotated[StrictStr, Field(max_length=2048)] = ""
    latestVersion: Version = 0
    latestDocketVersion: Version = 0
    isFullReplica: StrictBool = True


class PeerReference(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)

    url: Annotated[StrictStr, Field(max_length=300, pattern=r"^https?://[^\s/]+(/\S*)?$")]


class GossipMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    peerId: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{32}$")]
    publicKey: Annotated[StrictStr, Field(pattern=r"^[0-9a-f]{64}$")]
    url: Annotated[StrictStr, Field(max_length=300, pattern=r"^https?://[^\s/]+(/\S*)?$")]
    name: Annotated[StrictStr, Field(max_length=100)] = ""
    sequence: Annotated[StrictInt, Field(ge=1, le=2**63 - 1)]
    sentAt: Annotated[AwareDatetime, Field(strict=True)]
    advertisements: list[GossipAdvertisement] = Field(max_length=settings.SORCHA_BULK_MAX_ITEMS)
    peers: list[PeerReference] = Field(default_factory=list, max_length=MAX_PEERS_IN_MESSAGE)


class GossipRejected(Exception):
    """A message that changes nothing; `status` is the HTTP status the receiver answers with."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class SignedMessage:
    body: bytes
    signature: str


def build_message() -> SignedMessage:
    """This node's own signed message: its local public advertisements and the peers it knows."""
    identity = get_identity()
    advertisements = [
        {
            "registerId": entry.register_id,
            "name": entry.fields["name"],
            "description": entry.fields["description"],
            "latestVersion": entry.fields["latestVersion"],
            "latestDocketVersion": entry.fields["latestDocketVersion"],
            "isFullReplica": entry.fields["isFullReplica"],
        }
        for entry in get_store().local_advertisements()
    ]
    known = Peer.objects.filter(banned=False, peer_id__isnull=False).exclude(peer_id=identity.peer_id)
    message = {
        "peerId": identity.peer_id,
        "publicKey": identity.public_key,
        "url": settings.PEER_PUBLIC_URL,
        "name": settings.NODE_NAME,
        "sequence": next_sequence(),
        "sentAt": timezone.now().isoformat(),
        "advertisements": advertisements,
        "peers": [{"url": url} for url in known.values_list("url", flat=True)[:MAX_PEERS_IN_MESSAGE]],
    }
    body = orjson.dumps(message)
    return SignedMessage(body, sign(identity, body))


def accept_message(body: bytes, signature: str, expected_peer_id: str | None = None) -> Peer:
    """Verify a peer's message and apply it; raises GossipRejected (and changes nothing) otherwise."""
    if len(body) > settings.GOSSIP_MAX_BODY_BYTES:
        raise GossipRejected(
            413, f"body: {len(body)} bytes is over the gossip limit of {settings.GOSSIP_MAX_BODY_BYTES}"
        )
    try:
        message = GossipMessage.model_validate_json(body)
    except ValidationError as exc:
        raise GossipRejected(400, describe_validation_error(exc)) from exc
    if peer_id_for(message.publicKey) != message.peerId:
        raise GossipRejected(403, "peerId: does not derive from publicKey")
    if not signature or not signature_valid(message.publicKey, body, signature):
        raise GossipRejected(403, f"{SIGNATURE_HEADER}: signature does not verify against publicKey")
    if expected_peer_id is not None and message.peerId != expected_peer_id:
        raise GossipRejected(403, "peerId: the node at this URL is not the peer we knew there")
    if message.peerId == get_identity().peer_id:
        raise GossipRejected(400, "peerId: this message is from this node itself")
    peer = _record_sender(message)
    if peer.banned:
        raise GossipRejected(403, "peerId: this peer is banned")
    # Compare-and-set: only a sequence greater than the last accepted one is applied (no replays).
    accepted = Peer.objects.filter(pk=peer.pk, last_sequence__lt=message.sequence).update(
        last_sequence=message.sequence
    )
    if not accepted:
        raise GossipRejected(409, f"sequence: {message.sequence} is not newer than the last accepted from this peer")
    ads = [
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
    result = get_store().replace_remote(message.peerId, ads)
    now = timezone.now()
    Peer.objects.filter(pk=peer.pk).update(
        last_seen=now,
        advertisements_received=len(ads),
        name=message.name,
        consecutive_failures=0,
        next_attempt_at=None,
        last_error="",
    )
    _learn_peers(message.peers)
    logger.log(
        logging.INFO if result.changed else logging.DEBUG,
        "event=gossip_accepted peer_id=%s sequence=%d advertisements=%d added=%d updated=%d removed=%d",
        message.peerId,
        message.sequence,
        len(ads),
        result.added,
        result.updated,
        result.removed,
    )
    peer.refresh_from_db()
    return peer


def _record_sender(message: GossipMessage) -> Peer:
    """The sender's id and key come only from its own signed message; a seed row learns them here."""
    peer = Peer.objects.filter(peer_id=message.peerId).first()
    if peer is None:
        peer = Peer.objects.filter(url=message.url, peer_id__isnull=True).first()
        if peer is None:
            Peer.objects.filter(url=message.url).exclude(peer_id=message.peerId).update(url=_retired_url(message))
            peer = Peer(url=message.url)
        peer.peer_id = message.peerId
        peer.public_key = message.publicKey
        peer.name = message.name
        peer.save()
    elif peer.url != message.url and not Peer.objects.filter(url=message.url).exclude(pk=peer.pk).exists():
        Peer.objects.filter(pk=peer.pk).update(url=message.url)
    return peer


def _retired_url(message: GossipMessage) -> str:
    # Another node held this URL before: keep its row (and history) under a marked URL.
    return f"{message.url}#replaced-{message.peerId[:8]}"


def _learn_peers(references: list[PeerReference]) -> None:
    """Add peers we hear of (bounded); they are contacted by URL and prove who they are themselves."""
    own = settings.PEER_PUBLIC_URL.rstrip("/")
    known = set(Peer.objects.values_list("url", flat=True))
    room = MAX_KNOWN_PEERS - len(known)
    for reference in references:
        url = reference.url.rstrip("/")
        if room <= 0:
            break
        if url == own or url in known:
            continue
        Peer.objects.get_or_create(url=url)
        known.add(url)
        room -= 1


def ensure_seeds() -> None:
    for url in settings.PEER_SEEDS:
        if url.rstrip("/") != settings.PEER_PUBLIC_URL.rstrip("/"):
            Peer.objects.update_or_create(url=url, defaults={"is_seed": True})


def backoff_delay(failures: int) -> float:
    return float(min(settings.GOSSIP_BACKOFF_MAX, settings.GOSSIP_BACKOFF_BASE * 2 ** max(failures - 1, 0)))


def exchange_with(peer: Peer, message: SignedMessage | None = None) -> bool:
    """One push-pull exchange; records the outcome on the peer and backs off after a failure."""
    message = message or build_message()
    now = timezone.now()
    try:
        response = requests.post(
            peer.url.rstrip("/") + EXCHANGE_PATH,
            data=message.body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: message.signature},
            timeout=(settings.GOSSIP_CONNECT_TIMEOUT, settings.GOSSIP_READ_TIMEOUT),
        )
    except requests.RequestException as exc:
        _record_failure(peer, Peer.Result.UNREACHABLE, repr(exc), now)
        record_gossip_exchange("unreachable")
        return False
    if response.status_code != 200:
        _record_failure(peer, Peer.Result.REJECTED, f"HTTP {response.status_code}: {response.text[:300]}", now)
        record_gossip_exchange("rejected")
        return False
    try:
        accept_message(response.content, response.headers.get(SIGNATURE_HEADER, ""), expected_peer_id=peer.peer_id)
    except GossipRejected as exc:
        _record_failure(peer, Peer.Result.REJECTED, f"reply refused ({exc.status}): {exc.detail}", now)
        record_gossip_exchange("reply_refused")
        return False
    Peer.objects.filter(pk=peer.pk).update(last_exchange_at=now, last_exchange_result=Peer.Result.OK)
    record_gossip_exchange("ok")
    return True


def _record_failure(peer: Peer, result: str, error: str, now: datetime) -> None:
    failures = peer.consecutive_failures + 1
    delay = backoff_delay(failures) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security
    Peer.objects.filter(pk=peer.pk).update(
        last_exchange_at=now,
        last_exchange_result=result,
        last_error=error[:500],
        consecutive_failures=failures,
        next_attempt_at=now + timedelta(seconds=delay),
    )
    logger.warning(
        "event=gossip_exchange_failed peer_url=%s peer_id=%s result=%s failures=%d retry_in=%.1fs error=%r",
        peer.url,
        peer.peer_id,
        result,
        failures,
        delay,
        error[:300],
    )


def gossip_round(force: bool = False) -> dict[str, int]:
    """Exchange with every known, non-banned peer that is not backed off (all of them with `force`)."""
    ensure_seeds()
    own_id = get_identity().peer_id
    due = Peer.objects.filter(banned=False).exclude(peer_id=own_id)
    if not force:
        due = due.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
    peers = list(due)
    outcome = {"peers": len(peers), "ok": 0, "failed": 0}
    if not peers:
        return outcome
    message = build_message()  # one message for all: each receiver orders by this sender's sequence
    for peer in peers:
        ok = exchange_with(peer, message)
        outcome["ok" if ok else "failed"] += 1
    logger.info("event=gossip_round peers=%d ok=%d failed=%d", outcome["peers"], outcome["ok"], outcome["failed"])
    return outcome


# ---------------------------------------------------------------- triggered rounds
_trigger_lock = threading.Lock()
_trigger_timer: threading.Timer | None = None


def trigger_round() -> None:
    """After a local change, run a round soon (debounced: changes in quick succession share one round)."""
    global _trigger_timer
    if not settings.PEER_SEEDS and not Peer.objects.filter(banned=False).exists():
        return  # nobody to tell
    with _trigger_lock:
        if _trigger_timer is not None:
            return
        _trigger_timer = threading.Timer(settings.GOSSIP_TRIGGER_DELAY, _run_triggered_round)
        _trigger_timer.daemon = True
        _trigger_timer.start()


def _run_triggered_round() -> None:
    global _trigger_timer
    with _trigger_lock:
        _trigger_timer = None
    try:
        gossip_round(force=True)
    except Exception:
        logger.exception("event=gossip_triggered_round_failed")
    finally:
        close_old_connections()


def peer_status(peer: Peer) -> str:
    if peer.banned:
        return "banned"
    if peer.consecutive_failures:
        return "backing_off"
    if peer.last_exchange_result == Peer.Result.NEVER and peer.last_seen is None:
        return "never"
    return "healthy"


def describe_peer(peer: Peer) -> dict[str, Any]:
    store = get_store()
    return {
        "id": peer.pk,
        "peerId": peer.peer_id,
        "name": peer.name,
        "url": peer.url,
        "status": peer_status(peer),
        "isSeed": peer.is_seed,
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
    }


def set_banned(peer: Peer, banned: bool) -> Peer:
    """Banning hides the peer's advertisements at once and refuses its exchanges."""
    Peer.objects.filter(pk=peer.pk).update(banned=banned)
    if banned and peer.peer_id:
        get_store().forget_peer(peer.peer_id)
    logger.info("event=peer_%s peer_id=%s url=%s", "banned" if banned else "unbanned", peer.peer_id, peer.url)
    peer.refresh_from_db()
    return peer
