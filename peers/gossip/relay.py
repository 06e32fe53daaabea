"""Relayed gossip on this node: the signed sets it holds, its own set, and taking sets from a peer.

The sets live in the database (`OriginSet`, one row per origin, the bytes as the origin signed
them), shared by every process of the node; what they advertise lives in the store, keyed by
origin, expiring at the set's own `expiresAt`. `peers.gossip.origins` decides (pure); this module
reads and writes the rows and the store around those decisions.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from datetime import timedelta

from django.conf import settings
from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from peers import admission
from peers.gossip import origins, records
from peers.gossip.messages import local_set
from peers.gossip.origins import Held, Limits, Outcome
from peers.gossip.records import GossipAdvertisement, SignedSet
from peers.gossip.records import OriginSet as SignedOriginSet
from peers.identity import get_identity
from peers.models import OriginSet, Peer
from peers.store import AdvertisementInput, get_store
from sorcha_site.metrics import record_set_refusal

logger = logging.getLogger(__name__)

NEWS_ROUND_KEY = "gossip:news-round"
NEWS_SPACING = 0.1  # of GOSSIP_INTERVAL: 15 s by default, so a set crosses ten hops in one interval


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def limits() -> Limits:
    return Limits(
        ttl_ms=int(settings.ADVERTISEMENT_TTL * 1000),
        skew_ms=int(settings.CLOCK_SKEW_MAX * 1000),
        max_origins=settings.GOSSIP_MAX_ORIGINS,
        sets_per_sender=settings.GOSSIP_RATE_SETS_PER_PEER,
        bumps_per_origin=settings.GOSSIP_RATE_BUMPS_PER_ORIGIN,
        window_ms=int(settings.GOSSIP_RATE_WINDOW * 1000),
        budget_bytes=settings.GOSSIP_SET_BUDGET_BYTES,
    )


class RedisRates:
    """The rates of sets taken, counted in Redis for every process of the node (peers.admission)."""

    def take(self, kind: str, key: str, limit: int, now_ms: int) -> bool:
        return admission.within_rate(f"relay-{kind}", key, limit)


def _verified_urls() -> set[str]:
    """Origins whose URL this node has called and got their signed reply from."""
    rows = Peer.objects.filter(peer_id__isnull=False, url__isnull=False).values_list("peer_id", flat=True)
    return {peer_id for peer_id in rows if peer_id}


def is_direct(origin_id: str) -> bool:
    """This node exchanges with the origin itself: a message of its own came within one TTL."""
    recent = timezone.now() - timedelta(seconds=settings.ADVERTISEMENT_TTL)
    return Peer.objects.filter(peer_id=origin_id, banned=False, last_seen__gte=recent).exists()


class DbTable:
    """The sets this node holds, as `origins.Table`: rows in the database, advertisements in the store."""

    def __init__(self, sender: str) -> None:
        self.own_id = get_identity().peer_id
        self.sender = sender
        self.verified = _verified_urls()

    def held(self, origin_id: str) -> Held | None:
        row = OriginSet.objects.filter(origin_id=origin_id).values("sequence", "expires_at_ms", "banned").first()
        if row is None or row["banned"]:
            return None
        return Held(row["sequence"], row["expires_at_ms"], origin_id in self.verified)

    def count(self, now_ms: int) -> int:
        return OriginSet.objects.filter(banned=False, expires_at_ms__gt=now_ms).exclude(origin_id=self.own_id).count()

    def relayed_only(self, now_ms: int) -> str | None:
        return (
            OriginSet.objects.filter(banned=False, expires_at_ms__gt=now_ms)
            .exclude(origin_id=self.own_id)
            .exclude(origin_id__in=self.verified)
            .order_by("expires_at_ms")
            .values_list("origin_id", flat=True)
            .first()
        )

    def refused(self, record: SignedOriginSet) -> tuple[str, str] | None:
        origin = record.origin_id
        if origin == self.own_id:
            return "own", "records[].set.originId: is this node's own"
        if (
            OriginSet.objects.filter(origin_id=origin, banned=True).exists()
            or Peer.objects.filter(peer_id=origin, banned=True).exists()
        ):
            return "banned", f"records[].set.originId: {origin} is banned here"
        if settings.PEER_ADMISSION == "allowlist" and not _admitted_origin(origin):
            return "not_admitted", f"records[].set.originId: {origin} is not admitted here (allowlist mode)"
        store = get_store()
        held = store.remote_count()
        own = len(store.remote_advertisements(origin))
        after = held - own + len(record.advertisements)
        if len(record.advertisements) > own and after > settings.GOSSIP_MAX_REMOTE_ADS:
            return "remote_ads_cap", (
                f"records[].set.advertisements: would make {after} remote advertisements, over "
                f"GOSSIP_MAX_REMOTE_ADS ({settings.GOSSIP_MAX_REMOTE_ADS})"
            )
        return None

    def put(self, record: SignedOriginSet, verified_url: bool) -> None:
        """The set replaces its origin's, row and store, unless a newer one got there first."""
        with transaction.atomic():
            row, _ = _locked_row(record.origin_id, record.public_key)
            if row.banned or row.sequence >= record.sequence:
                return
            row.public_key, row.url, row.name = record.public_key, record.url[:300], record.name
            row.sequence, row.issued_at_ms, row.expires_at_ms = (
                record.sequence,
                record.issued_at_ms,
                record.expires_at_ms,
            )
            row.advertisements = len(record.advertisements)
            row.body, row.signature = record.signed.body, record.signed.signature
            row.received_from, row.received_at = self.sender, timezone.now()
            row.save()
            apply_to_store(record)

    def drop(self, origin_id: str) -> None:
        OriginSet.objects.filter(origin_id=origin_id, banned=False).delete()
        get_store().forget_peer(origin_id)
        logger.info("event=origin_evicted origin_id=%s", origin_id)


def _locked_row(origin_id: str, public_key: str) -> tuple[OriginSet, bool]:
    try:
        with transaction.atomic():
            return OriginSet.objects.select_for_update().get_or_create(
                origin_id=origin_id, defaults={"public_key": public_key}
            )
    except IntegrityError:  # another process created it meanwhile
        return OriginSet.objects.select_for_update().get(origin_id=origin_id), False


def _admitted_origin(origin_id: str) -> bool:
    """Admitted as a peer is (peers.admission.is_admitted): listed, approved, or a seed."""
    if origin_id in settings.PEER_ALLOWLIST:
        return True
    return Peer.objects.filter(Q(approved=True) | Q(is_seed=True), peer_id=origin_id).exists()


def inputs_of(advertisements: Iterable[GossipAdvertisement]) -> list[AdvertisementInput]:
    """Advertisements as a node states them (in a set or a message), as the store takes them."""
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
        for ad in advertisements
    ]


def apply_to_store(record: SignedOriginSet, direct: bool | None = None) -> None:
    """What the set advertises, in the store, until the set's `expiresAt`."""
    inputs = inputs_of(record.advertisements)
    direct = is_direct(record.origin_id) if direct is None else direct
    get_store().replace_remote(record.origin_id, inputs, until_ms=held_until(record, now_ms()), direct=direct)


def held_until(record: SignedOriginSet, at_ms: int) -> int:
    """When the set's advertisements leave this node: its `expiresAt`, and never later than one of this
    node's TTLs after its `issuedAt` or after now. The store shows `lastSeen` as that moment less one
    TTL, so a set's `lastSeen` is its `issuedAt` (earlier, never later, for an origin with a shorter
    TTL, or a clock ahead of this one)."""
    ttl_ms = int(settings.ADVERTISEMENT_TTL * 1000)
    return min(record.expires_at_ms, record.issued_at_ms + ttl_ms, at_ms + ttl_ms)


class NodeSide:
    """This node in one exchange with `sender` (`antientropy.Side`)."""

    def __init__(self, sender: str) -> None:
        self.sender = sender
        self.limits = limits()
        self.budget_bytes = self.limits.budget_bytes
        self.table = DbTable(sender)
        self.rates = RedisRates()

    def versions(self) -> dict[str, int]:
        return held_versions(now_ms())

    def offered(self) -> list[tuple[str, int, SignedSet]]:
        rows = OriginSet.objects.filter(banned=False, expires_at_ms__gt=now_ms()).values_list(
            "origin_id", "sequence", "body", "signature"
        )
        return [(origin, sequence, SignedSet(bytes(body), bytes(sig))) for origin, sequence, body, sig in rows]

    def take(self, sets: Sequence[SignedSet], sender: str) -> list[Outcome]:
        outcomes = []
        verified = self.table.verified
        for signed in sets:
            try:
                outcome = origins.accept(
                    signed,
                    self.table,
                    now_ms(),
                    self.limits,
                    sender=sender,
                    rates=self.rates,
                    verified_url=_origin_of(signed) in verified,
                )
            except Exception as exc:  # the database or the store failed: this set is not taken, the next may be
                logger.exception("event=set_take_failed sender=%s origin_id=%s", sender, _origin_of(signed))
                outcome = Outcome(None, "error", f"records[]: not taken ({type(exc).__name__})")
            if not outcome.accepted and outcome.reason not in origins.QUIET_REASONS:
                record_set_refusal(outcome.reason or "")
                logger.warning(
                    "event=set_refused sender=%s origin_id=%s reason=%s detail=%r",
                    sender,
                    outcome.record.origin_id if outcome.record else "",
                    outcome.reason,
                    outcome.detail,
                )
            elif outcome.accepted and outcome.record is not None:
                logger.info(
                    "event=set_accepted sender=%s origin_id=%s sequence=%d advertisements=%d",
                    sender,
                    outcome.record.origin_id,
                    outcome.record.sequence,
                    len(outcome.record.advertisements),
                )
            outcomes.append(outcome)
        if any(outcome.accepted for outcome in outcomes):
            news_round()
        return outcomes


def news_round() -> None:
    """A set was taken: a round soon, so that news crosses the network hop by hop instead of one
    periodic round per hop (an origin republishes at half its TTL: the other half is all the time its
    new set has to reach every node). At most one per NEWS_SPACING of GOSSIP_INTERVAL per node."""
    from peers.gossip.rounds import trigger_round  # rounds -> exchange -> inbound -> relay

    if cache.add(NEWS_ROUND_KEY, 1, timeout=max(1, round(settings.GOSSIP_INTERVAL * NEWS_SPACING))):
        trigger_round()


def _origin_of(signed: SignedSet) -> str:
    try:
        return records.parse(signed).origin_id
    except records.RecordRefused:
        return ""


def held_versions(at_ms: int) -> dict[str, int]:
    """(origin, sequence) of every unexpired set held, this node's own included."""
    own_set()
    return dict(OriginSet.objects.filter(banned=False, expires_at_ms__gt=at_ms).values_list("origin_id", "sequence"))


def own_set() -> tuple[SignedSet, bool]:
    """This node's current signed set, published again when its local set changed or half its TTL has
    passed (so it never lapses while the node runs). Returns it, and whether it was published now."""
    identity, local, at = get_identity(), local_set(), now_ms()
    row = OriginSet.objects.filter(origin_id=identity.peer_id).first()
    ttl_ms = int(settings.ADVERTISEMENT_TTL * 1000)
    if row is not None and row.content_digest == local.digest and at < row.issued_at_ms + ttl_ms // 2:
        return SignedSet(bytes(row.body), bytes(row.signature)), False
    advertisements = local.advertisements[: records.MAX_SET_ADVERTISEMENTS]
    if len(local.advertisements) > len(advertisements):
        logger.warning(
            "event=own_set_truncated advertisements=%d published=%d", len(local.advertisements), len(advertisements)
        )
    with transaction.atomic():
        row, _ = _locked_row(identity.peer_id, identity.public_key)
        if row.content_digest == local.digest and at < row.issued_at_ms + ttl_ms // 2 and row.body:
            return SignedSet(bytes(row.body), bytes(row.signature)), False  # another process published it
        sequence = max(row.sequence + 1, at)  # only grows, across restarts too: seeded from the clock
        signed = records.publish(
            identity.private_key,
            url=settings.PEER_PUBLIC_URL,
            name=settings.NODE_NAME,
            sequence=sequence,
            issued_at_ms=at,
            ttl_ms=ttl_ms,
            advertisements=advertisements,
        )
        row.public_key, row.url, row.name = identity.public_key, settings.PEER_PUBLIC_URL[:300], settings.NODE_NAME
        row.sequence, row.issued_at_ms, row.expires_at_ms = sequence, at, at + ttl_ms
        row.advertisements, row.content_digest = len(advertisements), local.digest
        row.body, row.signature, row.received_at = signed.body, signed.signature, timezone.now()
        row.save()
    logger.info("event=own_set_published sequence=%d advertisements=%d", sequence, len(advertisements))
    return signed, True


def confirm_held(direct_origin: str) -> None:
    """After a relay exchange with `direct_origin` (both sides now hold the same sets, or have sent each
    other what they lacked): the sets this process holds unverified (loaded at start and not written
    since) are confirmed, and the peer's own set counts as direct in the list."""
    stale: set[str] = set()
    for entry in get_store().remote_advertisements():
        if entry.peer_id is not None and (
            not entry.verified or (entry.peer_id == direct_origin and not entry.fields.get("direct", True))
        ):
            stale.add(entry.peer_id)
    for origin_id in stale:
        _apply_held(origin_id, direct=True if origin_id == direct_origin else None)


def _apply_held(origin_id: str, direct: bool | None) -> None:
    """The held set of an origin, written to the store again; the row is locked as `DbTable.put` locks
    it, so a newer set taken meanwhile is never written over."""
    with transaction.atomic():
        row = OriginSet.objects.select_for_update().filter(origin_id=origin_id, banned=False).first()
        if row is None or row.expires_at_ms <= now_ms() or not row.body:
            return
        try:
            record = records.parse(SignedSet(bytes(row.body), bytes(row.signature)))
        except records.RecordRefused:
            logger.exception("event=held_set_unreadable origin_id=%s", origin_id)
            return
        apply_to_store(record, direct=direct)


def forget_origin(origin_id: str, banned: bool) -> None:
    """An operator forgot or banned the origin: its set goes (a banned one's row stays, emptied, to refuse it)."""
    if banned:
        OriginSet.objects.update_or_create(
            origin_id=origin_id,
            defaults={"banned": True, "body": b"", "signature": b"", "sequence": 0, "expires_at_ms": 0},
        )
    else:
        OriginSet.objects.filter(origin_id=origin_id).delete()
    get_store().forget_peer(origin_id)


def unban_origin(origin_id: str) -> None:
    """Sets of the origin are taken again (the next relay that holds one brings it back)."""
    OriginSet.objects.filter(origin_id=origin_id, banned=True).delete()


def purge_expired() -> int:
    """Rows of sets past their expiry (banned rows stay)."""
    deleted, _ = OriginSet.objects.filter(banned=False, expires_at_ms__lte=now_ms()).delete()
    return deleted
