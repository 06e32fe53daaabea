"""The JSON form of a peer, as the peer list and the peer actions answer it."""

from __future__ import annotations

from typing import Any

from peers import history
from peers.models import Peer
from peers.store import get_store


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
