"""What an operator does to a peer (from the Peer API or the admin): ban, unban, approve, forget."""

from __future__ import annotations

import logging

from peers.gossip import relay
from peers.models import Peer

logger = logging.getLogger(__name__)


def set_banned(peer: Peer, banned: bool) -> Peer:
    """Banning hides the peer's advertisements at once and refuses its exchanges."""
    Peer.objects.filter(pk=peer.pk).update(banned=banned)
    if peer.peer_id:
        # Its signed set goes too, and is refused whoever relays it (peers.gossip.relay).
        relay.forget_origin(peer.peer_id, banned=banned) if banned else relay.unban_origin(peer.peer_id)
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
        relay.forget_origin(peer.peer_id, banned=False)
    peer.delete()
    logger.info("event=peer_forgotten peer_id=%s url=%s", peer.peer_id, peer.url)


def ban_origin(origin_id: str) -> None:
    """An origin's set goes, and is refused whoever relays it (its peer row, if any, is banned too)."""
    peer = Peer.objects.filter(peer_id=origin_id).first()
    if peer is not None:
        set_banned(peer, True)
        return
    relay.forget_origin(origin_id, banned=True)
    logger.info("event=origin_banned origin_id=%s", origin_id)


def unban_origin(origin_id: str) -> None:
    peer = Peer.objects.filter(peer_id=origin_id).first()
    if peer is not None:
        set_banned(peer, False)
        return
    relay.unban_origin(origin_id)
    logger.info("event=origin_unbanned origin_id=%s", origin_id)
