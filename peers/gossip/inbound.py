"""Accepting a peer's message: admission, replay and room checks, then the sender's set into the store.

A valid message replaces the sender's remote set in the store. What a sender says about its URL
is only a claim: a URL is bound to a peer id once this node has POSTed to it and received that
id's signed reply (ARCHITECTURE §4, "Admission and bounds"). Who may send, how often and how
much is decided in `peers.admission`. A digest-only message refreshes the set held for its
sender if what is held still has that digest; otherwise it is refused with 409 `need_set`.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from peers import admission, digests
from peers.admission import GossipRejected
from peers.gossip import antientropy, origins, relay
from peers.gossip.messages import (
    NEED_SET,
    GossipMessage,
    PeerReference,
    SignedMessage,
    build_message,
    build_relay_message,
    held_digest,
    local_set,
    own_url,
    verify_message,
)
from peers.models import Peer
from peers.store import AdvertisementInput, BulkResult, get_store

logger = logging.getLogger(__name__)

_apply_lock = threading.Lock()


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
    if not settings.GOSSIP_RELAY and _relay_fields(message):
        raise _refuse_relay(_relay_fields(message))
    if source is not None:
        admission.check_peer_rate(message.peerId)
    existing = Peer.objects.filter(peer_id=message.peerId).first()
    if existing is not None:
        admission.check_existing(existing)
        if existing.last_sequence >= message.sequence:
            raise _replayed(message.sequence)
    elif message.advertisements is None and not message.relay:
        raise _need_set()  # a stranger's digest stands for nothing held here
    # One message at a time per process from the room check to the store write, so concurrent
    # messages cannot each see room and together pass GOSSIP_MAX_REMOTE_ADS.
    with _apply_lock:
        ads = [] if message.relay else _inputs(message)
        if not message.relay:
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
        # A relay message's sets are taken by the caller (its steps need this row's liveness first).
        result = BulkResult() if message.relay else get_store().replace_remote(message.peerId, ads)
        if Peer.objects.filter(pk=peer.pk, banned=True).exists():  # banned while this message was applied
            get_store().forget_peer(message.peerId)
            raise GossipRejected(403, "peerId: this peer is banned", "banned")
        received = {} if message.relay else {"advertisements_received": len(ads)}
        Peer.objects.filter(pk=peer.pk).update(
            last_seen=timezone.now(),
            **received,
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
        return relay.inputs_of(message.advertisements)
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


def _relay_fields(message: GossipMessage) -> str:
    present = [name for name in ("originsDigest", "originVersions", "records") if getattr(message, name) is not None]
    return present[0] if present else ""


def _refuse_relay(field: str) -> GossipRejected:
    return GossipRejected(400, f"{field}: this node does not relay signed sets (GOSSIP_RELAY is off)", "malformed")


def _need_set() -> GossipRejected:
    return GossipRejected(
        409, "advertisementsDigest: this node does not hold a set of yours with this digest; send the set", NEED_SET
    )


def _replayed(sequence: int) -> GossipRejected:
    return GossipRejected(409, f"sequence: {sequence} is not newer than the last accepted from this peer", "replayed")


def _check_remote_room(peer_id: str, count: int) -> None:
    """The message may not take the remote advertisements held past GOSSIP_MAX_REMOTE_ADS."""
    store = get_store()
    held = int(store.status()["remoteAdvertisements"])
    own = len(store.remote_advertisements(peer_id))
    after = held - own + count
    if count > own and after > settings.GOSSIP_MAX_REMOTE_ADS:
        raise GossipRejected(
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


def _learn_peers(references: list[PeerReference]) -> None:
    """Add URLs we hear of (bounded, never evicting); they prove who they are when contacted.

    Not with GOSSIP_DISCOVERY off: the node then dials only its seeds and the peers that called it.
    """
    if not settings.GOSSIP_DISCOVERY:
        return
    own = own_url()
    for reference in references:
        url = reference.url
        if url == own or Peer.objects.filter(Q(url=url) | Q(claimed_url=url)).exists():
            continue
        if not admission.room_for_learnt_url():
            break
        Peer.objects.get_or_create(url=url)


def build_reply(accepted: Accepted, digest_aware: bool, relay_header: bool = False) -> SignedMessage:
    """This node's answer to an accepted message: the digest alone when the sender holds this node's set.

    A relay message gets the next anti-entropy step (`answer_relay`). To a node that sent the relay
    header, the original reply also carries `originsDigest`: this node relays too.
    """
    if accepted.message.relay:
        return answer_relay(accepted)
    relaying = relay_header and settings.GOSSIP_RELAY
    origins_digest = origins.digest(relay.held_versions(relay.now_ms())) if relaying else None
    if not digest_aware:
        return build_message(origins_digest=origins_digest)
    local = local_set()
    return build_message(
        local,
        digest_aware=True,
        full=accepted.message.heldDigest != local.digest,
        held=accepted.held_digest(),
        origins_digest=origins_digest,
    )


def answer_relay(accepted: Accepted) -> SignedMessage:
    """Take the sets of a relay message and answer with the next step: Ack to a Syn, Done to an Ack2."""
    message, sender = accepted.message, accepted.message.peerId
    step = message.model_dump(include={"originsDigest", "originVersions", "records"}, exclude_none=True)
    side = relay.NodeSide(sender)
    if message.originVersions is None:
        answer, _ = antientropy.ack(side, step, sender)
    else:
        answer, _ = antientropy.done(side, step, sender)
    relay.confirm_held(sender)
    return build_relay_message(answer)
