"""One outbound exchange: POST this node's message to a peer, accept its signed reply, record the outcome.

Outbound calls go through `peers.outbound` (vetted addresses, one deadline). A failed exchange
backs the peer's row off exponentially (with jitter) and is counted in the metrics.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import orjson
from django.conf import settings
from django.utils import timezone

from peers import history, outbound
from peers.admission import GossipRejected
from peers.gossip import antientropy, relay
from peers.gossip.inbound import Accepted, accept_message
from peers.gossip.messages import (
    DIGESTS_HEADER,
    EXCHANGE_PATH,
    NEED_SET,
    RELAY_HEADER,
    SIGNATURE_HEADER,
    LocalSet,
    SignedMessage,
    build_message,
    build_relay_message,
    held_digest,
    local_set,
)
from peers.gossip.records import SignedSet
from peers.models import Peer
from sorcha_site.metrics import record_gossip_exchange, record_gossip_refusal

logger = logging.getLogger(__name__)


def backoff_delay(failures: int) -> float:
    return float(min(settings.GOSSIP_BACKOFF_MAX, settings.GOSSIP_BACKOFF_BASE * 2 ** max(failures - 1, 0)))


def exchange_with(
    peer: Peer,
    local: LocalSet | None = None,
    deadline: float | None = None,
    pushed: Sequence[SignedSet] = (),
) -> str:
    """One push-pull exchange before `deadline` (monotonic); records the outcome on the row and in its history.

    Returns the outcome: ok, refused_address, unreachable, rejected or reply_refused. With a peer
    that relays signed sets, the exchange is anti-entropy (`peers.gossip.antientropy`), `pushed`
    going with its first message; with a peer that speaks digests, an unchanged set travels as its
    digest; when either side turns out not to hold the other's set, the exchange is sent once more,
    with the sets, before the same deadline.
    """
    local = local or local_set()
    deadline = deadline if deadline is not None else time.monotonic() + settings.GOSSIP_EXCHANGE_DEADLINE
    now, started, tally = timezone.now(), time.monotonic(), history.ExchangeTally()
    outcome = _exchange(peer, local, deadline, now, tally, pushed)
    history.record_exchange(peer, "outbound", outcome, now, time.monotonic() - started, tally)
    return outcome


def _exchange(
    peer: Peer,
    local: LocalSet,
    deadline: float,
    now: datetime,
    tally: history.ExchangeTally,
    pushed: Sequence[SignedSet],
) -> str:
    url = peer.contact_url
    try:
        target = outbound.resolve(url, EXCHANGE_PATH, deadline)
    except outbound.OutboundRefused as exc:
        return _failed(peer, Peer.Result.REJECTED, str(exc), now, "refused_address", tally)
    except outbound.ExchangeFailed as exc:
        return _failed(peer, Peer.Result.UNREACHABLE, str(exc), now, "unreachable", tally)
    try:
        if peer.speaks_relay and peer.peer_id and settings.GOSSIP_RELAY:
            accepted = _relay_exchange(peer, target, url, deadline, tally, pushed)
        else:
            accepted = _original_exchange(peer, local, target, url, deadline, tally)
            if accepted.message.originsDigest is not None and settings.GOSSIP_RELAY:  # it relays: sets travel now
                accepted = _relay_exchange(accepted.peer, target, url, deadline, tally, pushed)
    except outbound.ExchangeFailed as exc:
        if exc.status == 400 and peer.speaks_relay:
            # It no longer takes relay messages (relaying switched off, or an older release): the
            # original exchange from the next round on.
            Peer.objects.filter(pk=peer.pk).update(speaks_relay=False)
        result = Peer.Result.REJECTED if exc.status is not None else Peer.Result.UNREACHABLE
        return _failed(peer, result, str(exc), now, "rejected" if exc.status is not None else "unreachable", tally)
    except GossipRejected as exc:
        record_gossip_refusal(exc.reason)
        return _failed(
            peer, Peer.Result.REJECTED, f"reply refused ({exc.status}): {exc.detail[:200]}", now, tally=tally
        )
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
        # A reply with originsDigest is a peer that relays signed sets: the next exchange is anti-entropy.
        speaks_relay=accepted.message.originsDigest is not None,
    )
    if accepted.message.relay:
        relay.confirm_held(accepted.message.peerId)
    record_gossip_exchange("ok")
    tally.peer_pk = replier.pk
    tally.advertisements = replier.advertisements_received
    tally.digest_only = accepted.message.advertisements is None
    return "ok"


def _original_exchange(
    peer: Peer, local: LocalSet, target: outbound.Target, url: str, deadline: float, tally: history.ExchangeTally
) -> Accepted:
    """The exchange of the sender's own set (by digest when the peer speaks digests)."""
    digest_aware = bool(peer.acknowledged_digest)
    full = peer.acknowledged_digest != local.digest
    held = held_digest(peer.peer_id) if digest_aware and peer.peer_id else None
    for last_try in (False, True):
        message = build_message(local, digest_aware=digest_aware, full=full, held=held)
        tally.bytes_sent += len(message.body)
        try:
            reply = _post(target, message, deadline)
        except outbound.ExchangeFailed as exc:
            if not full and not last_try and _asks_for_set(exc):
                full = True  # the peer lost our set (restart, expiry, forgot us): send it now
                continue
            raise
        tally.bytes_received += len(reply.body)
        try:
            return accept_message(reply.body, reply.signature, contacted_url=url)
        except GossipRejected as exc:
            if exc.reason == NEED_SET and not last_try:
                # The reply's digest stands for a set of the peer's no longer held here: ask for it. The
                # peer holds ours now (it accepted our message), so ours travels as its digest.
                full, held = False, None
                continue
            raise
    raise AssertionError("unreachable: the last try returns or raises")


def _relay_exchange(
    peer: Peer,
    target: outbound.Target,
    url: str,
    deadline: float,
    tally: history.ExchangeTally,
    pushed: Sequence[SignedSet],
) -> Accepted:
    """Anti-entropy with a peer that relays: Syn and Ack, then (when the digests differ) Ack2 and Done."""
    side = relay.NodeSide(str(peer.peer_id))
    accepted = _post_step(target, antientropy.syn(side, pushed), url, deadline, tally)
    if not accepted.message.relay:
        return accepted  # it answered with its own list (no longer relays): applied as such
    ack = _step_of(accepted)
    second = antientropy.ack2(side, ack)
    if second is None:
        return accepted
    done = _post_step(target, second, url, deadline, tally)
    antientropy.finish(side, _step_of(done), str(peer.peer_id))
    return done


def _post_step(
    target: outbound.Target, step: dict[str, Any], url: str, deadline: float, tally: history.ExchangeTally
) -> Accepted:
    message = build_relay_message(step)
    tally.bytes_sent += len(message.body)
    reply = _post(target, message, deadline)
    tally.bytes_received += len(reply.body)
    return accept_message(reply.body, reply.signature, contacted_url=url)


def _step_of(accepted: Accepted) -> dict[str, Any]:
    return accepted.message.model_dump(include={"originsDigest", "originVersions", "records"}, exclude_none=True)


def _post(target: outbound.Target, message: SignedMessage, deadline: float) -> outbound.Reply:
    return outbound.post(
        target,
        message.body,
        {
            "Content-Type": "application/json",
            SIGNATURE_HEADER: message.signature,
            DIGESTS_HEADER: "1",
            **({RELAY_HEADER: "1"} if settings.GOSSIP_RELAY else {}),
        },
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
