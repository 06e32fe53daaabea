"""History at a glance for the Peer Service: the pool's size over the last day, each peer's last exchanges.

The beat samples the pool (local and remote advertisements) once a minute; samples older than a
day are deleted as each new one is taken. Every gossip exchange, outbound or inbound, is recorded
against the peer's row; the last PEER_EXCHANGE_HISTORY per peer are kept. Both live in the
database, so they survive restarts of every process.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.db import DatabaseError, IntegrityError
from django.utils import timezone

from peers.models import Peer, PeerExchange, PoolSample
from peers.store import get_store

logger = logging.getLogger(__name__)

POOL_HISTORY = timedelta(days=1)
# A day of samples, one a minute: the bound whatever the schedule (two beats by mistake, a faster one).
POOL_HISTORY_MAX = 1_440
PEER_EXCHANGE_HISTORY = 20


# ----------------------------------------------------------------------------------- pool size
def sample_pool(now: datetime | None = None) -> PoolSample:
    """Record the pool's size now (this process's view of the store) and delete what is beyond a day."""
    now = now or timezone.now()
    status = get_store().status()
    sample = PoolSample.objects.create(
        sampled_at=now, local=status["localAdvertisements"], remote=status["remoteAdvertisements"]
    )
    prune_pool(now)
    return sample


def prune_pool(now: datetime) -> int:
    """Delete the samples older than a day, and all but the newest POOL_HISTORY_MAX; returns how many."""
    deleted, _ = PoolSample.objects.filter(sampled_at__lt=now - POOL_HISTORY).delete()
    newest = PoolSample.objects.order_by("-id").values_list("id", flat=True)
    boundary = list(newest[POOL_HISTORY_MAX - 1 : POOL_HISTORY_MAX])
    if boundary:
        extra, _ = PoolSample.objects.filter(id__lt=boundary[0]).delete()
        deleted += extra
    return deleted


def pool_history(now: datetime | None = None) -> list[dict[str, Any]]:
    """The samples of the last day, oldest first."""
    now = now or timezone.now()
    newest = PoolSample.objects.filter(sampled_at__gte=now - POOL_HISTORY).order_by("-sampled_at", "-id")
    return [
        {"sampledAt": sample.sampled_at.isoformat(), "local": sample.local, "remote": sample.remote}
        for sample in reversed(newest[:POOL_HISTORY_MAX])
    ]


# ----------------------------------------------------------------------------------- exchanges
@dataclass
class ExchangeTally:
    """What one exchange carried, filled in as it goes."""

    bytes_sent: int = 0
    bytes_received: int = 0
    advertisements: int | None = None
    digest_only: bool = False
    error: str = ""
    # The row the exchange counted for when it is not the row called (a URL that answered as another peer).
    peer_pk: int | None = None


def record_exchange(
    peer: Peer, direction: str, outcome: str, at: datetime, duration: float, tally: ExchangeTally
) -> None:
    """Keep the exchange and prune the peer's older ones. The history is a view of what the peer row
    already says, so a database error here is logged rather than raised into the exchange."""
    peer_pk = tally.peer_pk or peer.pk
    try:
        PeerExchange.objects.create(
            peer_id=peer_pk,
            at=at,
            direction=direction,
            outcome=outcome,
            duration_seconds=max(duration, 0.0),
            bytes_sent=tally.bytes_sent,
            bytes_received=tally.bytes_received,
            advertisements=tally.advertisements,
            digest_only=tally.digest_only,
            error=tally.error[:300],
        )
        prune_exchanges(peer_pk)
    except IntegrityError:
        logger.debug("event=peer_exchange_not_recorded peer_pk=%s cause=peer_forgotten", peer_pk)
    except DatabaseError as exc:
        logger.error(
            "event=peer_exchange_not_recorded peer_pk=%s direction=%s outcome=%s error=%r",
            peer_pk,
            direction,
            outcome,
            exc,
        )


def prune_exchanges(peer_pk: int, keep: int = PEER_EXCHANGE_HISTORY) -> int:
    """Delete all but the peer's newest `keep` exchanges; returns how many were deleted."""
    newest = PeerExchange.objects.filter(peer_id=peer_pk).order_by("-id").values_list("id", flat=True)
    boundary = list(newest[keep - 1 : keep])
    if not boundary:
        return 0
    deleted, _ = PeerExchange.objects.filter(peer_id=peer_pk, id__lt=boundary[0]).delete()
    return deleted


def describe_exchanges(peer: Peer) -> list[dict[str, Any]]:
    """The peer's last exchanges, oldest first (from a prefetch when the caller made one)."""
    exchanges = list(peer.exchanges.all())[-PEER_EXCHANGE_HISTORY:]
    return [
        {
            "at": exchange.at.isoformat(),
            "direction": exchange.direction,
            "outcome": exchange.outcome,
            "durationSeconds": exchange.duration_seconds,
            "bytesSent": exchange.bytes_sent,
            "bytesReceived": exchange.bytes_received,
            "advertisements": exchange.advertisements,
            "digestOnly": exchange.digest_only,
            "error": exchange.error,
        }
        for exchange in exchanges
    ]
