"""Who may speak through the gossip door, how often, and how many of them this node keeps.

The exchange is open to anyone who signs (keys are free), so it is bounded like any public
door (ARCHITECTURE §4, "Admission and bounds"): a rate per source address and per peer id,
kept in Redis so every web process counts together; a cap on peer rows with eviction of the
stalest; an allowlist mode for a closed network. Nothing here parses or verifies messages.
"""

from __future__ import annotations

import logging
import math
import time
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import transaction
from django.db.models import Q
from django.db.models.functions import Coalesce
from django.utils import timezone

from peers.models import NodeIdentity, Peer

logger = logging.getLogger(__name__)


class GossipRejected(Exception):
    """A message that changes nothing; `status` is the HTTP status, `reason` the metric label."""

    def __init__(self, status: int, detail: str, reason: str, retry_after: float | None = None) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.reason = reason
        self.retry_after = retry_after


# ---------------------------------------------------------------- rate limits
def _hit(kind: str, key: str, limit: int) -> float | None:
    """Count one exchange in the current window; seconds until it ends when over `limit`, else None.

    Fixed windows in Redis (the default cache), shared by every process of the node. Redis being
    down lets exchanges through: the caps below still bound what they can do.
    """
    window = settings.GOSSIP_RATE_WINDOW
    now = time.time()
    slot = int(now // window)
    cache_key = f"gossip-rate:{kind}:{key}:{slot}"
    cache.add(cache_key, 0, timeout=math.ceil(window) + 1)
    try:
        count = cache.incr(cache_key)
    except ValueError:  # expired between add and incr: a new window
        count = 1
    if count is None or count <= limit:
        return None
    return (slot + 1) * window - now


def _check_rate(kind: str, key: str, limit: int, setting: str, field: str, source: str) -> None:
    retry = _hit(kind, key, limit)
    if retry is not None:
        raise GossipRejected(
            429,
            f"{field}: more than {setting} ({limit}) exchanges in {settings.GOSSIP_RATE_WINDOW:g} s from this {source}",
            f"rate_limited_{source}",
            retry,
        )


def check_address_rate(address: str) -> None:
    _check_rate("addr", address, settings.GOSSIP_RATE_PER_ADDRESS, "GOSSIP_RATE_PER_ADDRESS", "source", "address")


def within_rate(kind: str, key: str, limit: int) -> bool:
    """Count one (a set taken, a sequence bump) in the current window; False once over `limit`."""
    return _hit(kind, key, limit) is None


def check_peer_rate(peer_id: str) -> None:
    _check_rate("peer", peer_id, settings.GOSSIP_RATE_PER_PEER, "GOSSIP_RATE_PER_PEER", "peerId", "peer")


# ---------------------------------------------------------------- admission
def is_admitted(peer: Peer) -> bool:
    """In allowlist mode: listed, approved by the operator, or a seed. In open mode: everyone."""
    if settings.PEER_ADMISSION == "open":
        return True
    return peer.approved or peer.is_seed or peer.peer_id in settings.PEER_ALLOWLIST


def check_existing(peer: Peer) -> None:
    if peer.banned:
        raise GossipRejected(403, "peerId: this peer is banned", "banned")
    if not is_admitted(peer):
        raise GossipRejected(
            403, "peerId: not admitted (PEER_ADMISSION=allowlist; waiting for the operator's approval)", "not_admitted"
        )


def _evictable() -> Q:
    """Rows the cap may drop: not seeds, approved, allowlisted or banned, and not seen for one TTL."""
    seen_recently = timezone.now() - timedelta(seconds=settings.ADVERTISEMENT_TTL)
    keep = Q(is_seed=True) | Q(approved=True) | Q(banned=True) | Q(last_seen__gte=seen_recently)
    if settings.PEER_ALLOWLIST:
        keep |= Q(peer_id__in=settings.PEER_ALLOWLIST)
    return ~keep


def _lock_rows() -> None:
    # Serialises admissions across processes (PostgreSQL row lock; SQLite's immediate transactions
    # already serialise writers), so the count and the insert below cannot interleave.
    list(NodeIdentity.objects.select_for_update().filter(pk=1).values_list("pk", flat=True))


def admit_new_sender(peer_id: str, public_key: str, name: str, claimed_url: str, sequence: int) -> Peer:
    """A row for a sender seen for the first time, within GOSSIP_MAX_PEERS (the stalest other row
    makes room when it can); GossipRejected when the node is full or the network closed."""
    from peers.store import get_store

    allowlisted = peer_id in settings.PEER_ALLOWLIST
    open_door = settings.PEER_ADMISSION == "open" or allowlisted
    evicted: Peer | None = None
    with transaction.atomic():
        _lock_rows()
        existing = Peer.objects.filter(peer_id=peer_id).first()
        if existing is not None:  # another process admitted it meanwhile
            check_existing(existing)
            raise GossipRejected(409, f"sequence: {sequence} raced with another message from this peer", "replayed")
        if Peer.objects.count() >= settings.GOSSIP_MAX_PEERS:
            if not open_door:
                raise GossipRejected(403, "peerId: not admitted (PEER_ADMISSION=allowlist)", "not_admitted")
            evicted = (
                Peer.objects.filter(_evictable()).order_by(Coalesce("last_seen", "first_seen").asc(), "pk").first()
            )
            if evicted is None:
                raise GossipRejected(
                    429,
                    f"peerId: this node holds GOSSIP_MAX_PEERS ({settings.GOSSIP_MAX_PEERS}) peers, all seen "
                    "within one ADVERTISEMENT_TTL; new peers are refused",
                    "peer_cap",
                    settings.ADVERTISEMENT_TTL,
                )
            evicted.delete()
        # In allowlist mode an unknown sender is kept as `pending` (nothing it sends is applied)
        # so that the operator can approve it.
        peer = Peer.objects.create(
            peer_id=peer_id,
            public_key=public_key,
            name=name,
            claimed_url=claimed_url,
            last_sequence=sequence if open_door else 0,
            # Seen now: a row just admitted is never the one the next newcomer evicts.
            last_seen=timezone.now() if open_door else None,
        )
    if evicted is not None:
        if evicted.peer_id:
            get_store().forget_peer(evicted.peer_id)
        logger.info("event=peer_evicted peer_id=%s url=%s for=%s", evicted.peer_id, evicted.url, peer_id)
    if not open_door:
        raise GossipRejected(
            403, "peerId: not admitted (PEER_ADMISSION=allowlist); kept as pending for the operator", "not_admitted"
        )
    return peer


def room_for_learnt_url() -> bool:
    """Learnt URLs never evict anything, and at most a quarter of the rows are unanswered learnt URLs."""
    if Peer.objects.count() >= settings.GOSSIP_MAX_PEERS:
        return False
    unanswered = Peer.objects.filter(peer_id__isnull=True, is_seed=False).count()
    return unanswered < max(1, settings.GOSSIP_MAX_PEERS // 4)
