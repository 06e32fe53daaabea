"""Gossip rounds: which peers are due, one round at a time per process, and the debounced triggered round."""

from __future__ import annotations

import logging
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor, wait

from django.conf import settings
from django.core.cache import cache
from django.db import close_old_connections, connection
from django.db.models import Q
from django.utils import timezone

from peers import admission, outbound
from peers.gossip import antientropy, origins, relay
from peers.gossip.exchange import exchange_with
from peers.gossip.messages import local_set, own_url
from peers.gossip.records import SignedSet
from peers.identity import get_identity
from peers.models import Peer

logger = logging.getLogger(__name__)

# A round ends within one exchange deadline plus this, whatever the peers do.
ROUND_MARGIN = 2.0


def ensure_seeds() -> None:
    own = own_url()
    for url in outbound.seed_urls():
        if url != own and not Peer.objects.filter(url=url, is_seed=True).exists():
            Peer.objects.update_or_create(url=url, defaults={"is_seed": True})


ROUND_DIGEST_KEY = "gossip:round-digest"


def _relay_fanout() -> int:
    """GOSSIP_FANOUT while this node has news since its last round began, else one (antientropy.round_fanout).
    The digest is kept in the cache, shared by the node's processes; without it, the round fans out."""
    # Kept as an integer (60 bits of the digest): Redis then holds it as plain digits, never as the pickled
    # bytes a text would become, which the store's scan of the node's keys would read as a broken page.
    now = int(origins.digest(relay.held_versions(relay.now_ms()))[:15], 16)
    last = cache.get(ROUND_DIGEST_KEY)
    cache.set(ROUND_DIGEST_KEY, now, timeout=None)
    return antientropy.round_fanout(settings.GOSSIP_FANOUT, str(now), None if last is None else str(last))


def _due_peers(force: bool) -> list[Peer]:
    """Peers to contact, each URL once, in an order no peer picks: seeds and proven peers first."""
    own_id = get_identity().peer_id
    own = own_url()
    due = Peer.objects.filter(banned=False).exclude(peer_id=own_id)
    if not force:
        due = due.filter(Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=timezone.now()))
    candidates = [peer for peer in due if peer.contact_url and peer.contact_url != own]
    candidates = [peer for peer in candidates if peer.peer_id is None or admission.is_admitted(peer)]
    if not settings.GOSSIP_DISCOVERY:  # seeds and the peers that called this node, never URLs heard of
        candidates = [peer for peer in candidates if peer.is_seed or peer.peer_id is not None]
    random.shuffle(candidates)
    candidates.sort(key=lambda peer: (not peer.is_seed, peer.url is None, peer.last_exchange_result != "ok"))
    by_url: dict[str, Peer] = {}
    for peer in candidates:
        by_url.setdefault(peer.contact_url, peer)
    # Peers that relay signed sets: GOSSIP_FANOUT of them at random (what one hears, all hear in a few
    # rounds). The others get every round: each holds only what this node tells it directly.
    relaying = [peer for peer in by_url.values() if peer.speaks_relay and peer.peer_id]
    others = [peer for peer in by_url.values() if not (peer.speaks_relay and peer.peer_id)]
    fanout = _relay_fanout() if relaying and settings.GOSSIP_RELAY else 0
    chosen = others + random.sample(relaying, min(fanout, len(relaying)))
    chosen.sort(key=lambda peer: (not peer.is_seed, peer.url is None, peer.last_exchange_result != "ok"))
    return chosen


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
    pushed: list[SignedSet] = []
    if settings.GOSSIP_RELAY:
        relay.purge_expired()
        own, published = relay.own_set()
        pushed = [own] if published else []  # this node's new set goes at once to the peers of this round
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
            return exchange_with(peer, local, deadline, pushed)
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


class TriggeredRounds:
    """The debouncer of rounds triggered by local changes: changes in quick succession share one round.

    Single-flight per process: while a triggered round runs, further changes ask for one more
    round after it, never a second one beside it.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._timer: threading.Timer | None = None
        self._running = threading.Lock()
        self._wanted = False

    def trigger(self) -> None:
        with self._lock:
            if self._running.locked():
                self._wanted = True
                return
            if self._timer is not None:
                return
            self._timer = threading.Timer(settings.GOSSIP_TRIGGER_DELAY, self._run)
            self._timer.daemon = True
            self._timer.start()

    def _run(self) -> None:
        with self._lock:
            self._timer = None
            if not self._running.acquire(blocking=False):
                self._wanted = True
                return
            self._wanted = False
        try:
            gossip_round(force=True)
        except Exception:
            logger.exception("event=gossip_triggered_round_failed")
        finally:
            close_old_connections()
            with self._lock:
                self._running.release()
                again = self._wanted
                self._wanted = False
        if again:
            trigger_round()

    def settled(self) -> bool:
        """No triggered round is running or waiting for its delay."""
        with self._lock:
            return self._timer is None and not self._running.locked()


_triggered = TriggeredRounds()


def trigger_round() -> None:
    """After a local change, run a round soon (debounced; see TriggeredRounds)."""
    if not settings.PEER_SEEDS and not Peer.objects.filter(banned=False).exists():
        return  # nobody to tell
    _triggered.trigger()


def triggered_rounds_settled() -> bool:
    return _triggered.settled()
