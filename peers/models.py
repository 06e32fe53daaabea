"""Peer Service tables: this node's identity, the peers it knows, and the admin page's anchor."""

from __future__ import annotations

from django.db import models


class NodeIdentity(models.Model):
    """This node's Ed25519 key pair, generated on first start and kept; `peer_id` derives from the key."""

    peer_id = models.CharField(max_length=32, unique=True)
    public_key = models.CharField(max_length=64, help_text="raw Ed25519 public key, hex")
    private_key = models.CharField(max_length=64, help_text="raw Ed25519 private key, hex")
    sequence = models.BigIntegerField(default=0, help_text="last gossip sequence number sent; only grows")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        verbose_name = "node identity"
        verbose_name_plural = "node identity"

    def __str__(self) -> str:
        return self.peer_id


class Peer(models.Model):
    """Another node of the peer network, known from PEER_SEEDS or from another peer's signed message."""

    class Result(models.TextChoices):
        NEVER = "never", "never exchanged"
        OK = "ok", "ok"
        UNREACHABLE = "unreachable", "unreachable"
        REJECTED = "rejected", "rejected"
        ERROR = "error", "error"

    peer_id = models.CharField(max_length=32, unique=True, null=True, blank=True)
    public_key = models.CharField(max_length=64, blank=True, default="")
    # Where this node contacts the peer. Bound to `peer_id` only once this node POSTed to it and got
    # that id's signed reply (or set by the operator: a seed, a URL learnt and not yet answered).
    url = models.URLField(max_length=300, unique=True, null=True, blank=True)
    # The URL the peer states in its own messages: contacted to prove it, never trusted before.
    claimed_url = models.URLField(max_length=300, blank=True, default="")
    approved = models.BooleanField(
        default=False, help_text="admitted by the operator (allowlist mode); never evicted by the peer cap"
    )
    name = models.CharField(max_length=100, blank=True, default="")
    is_seed = models.BooleanField(default=False)
    banned = models.BooleanField(default=False, db_index=True)
    first_seen = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(null=True, blank=True, help_text="last valid message from this peer")
    last_exchange_at = models.DateTimeField(null=True, blank=True)
    last_exchange_result = models.CharField(max_length=16, choices=Result.choices, default=Result.NEVER)
    last_error = models.CharField(max_length=500, blank=True, default="")
    consecutive_failures = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True, help_text="backed off until then")
    last_sequence = models.BigIntegerField(default=0, help_text="highest sequence accepted from this peer")
    advertisements_received = models.PositiveIntegerField(default=0)
    # What the peer's last signed reply said it holds of this node's set (`heldDigest`): while it
    # equals this node's current digest, exchanges with it carry the digest, not the set. Empty:
    # nothing acknowledged yet, or the peer does not speak digests (it gets the original message).
    acknowledged_digest = models.CharField(
        max_length=64, blank=True, default="", help_text="digest of this node's set the peer last said it holds"
    )

    # The peer's replies carry `originsDigest`: it relays signed sets, and gets the relay exchange.
    speaks_relay = models.BooleanField(default=False, help_text="exchanges signed per-origin sets (relayed gossip)")

    class Meta:
        ordering = ("name", "url")

    def __str__(self) -> str:
        return self.name or self.peer_id or self.url or self.claimed_url

    @property
    def contact_url(self) -> str:
        """Where to call it: the bound URL; its own latest claim while that fails (it may have moved)."""
        if self.url and self.claimed_url and self.claimed_url != self.url and self.consecutive_failures:
            return self.claimed_url
        return self.url or self.claimed_url

    @property
    def status(self) -> str:
        """banned, pending (waiting for the operator in allowlist mode), backing_off, never or healthy."""
        from django.conf import settings

        if self.banned:
            return "banned"
        if (
            settings.PEER_ADMISSION == "allowlist"
            and self.peer_id
            and not self.approved
            and not self.is_seed
            and self.peer_id not in settings.PEER_ALLOWLIST
        ):
            return "pending"
        if self.consecutive_failures:
            return "backing_off"
        if self.last_exchange_result == self.Result.NEVER and self.last_seen is None:
            return "never"
        return "healthy"


class OriginSet(models.Model):
    """The newest signed advertisement set held for one origin (this node's own included), relayed as it came.

    `body` and `signature` are the bytes the origin signed, kept to be sent on untouched. A banned
    origin keeps its row, emptied, so its sets are refused whoever relays them.
    """

    origin_id = models.CharField(max_length=32, unique=True)
    public_key = models.CharField(max_length=64)
    url = models.CharField(max_length=300, blank=True, default="", help_text="as the origin states it (a claim)")
    name = models.CharField(max_length=100, blank=True, default="")
    sequence = models.BigIntegerField(default=0)
    issued_at_ms = models.BigIntegerField(default=0)
    expires_at_ms = models.BigIntegerField(default=0, db_index=True)
    advertisements = models.PositiveIntegerField(default=0)
    # This node's own set only: the digest (peers.digests) of the local set it was published from.
    content_digest = models.CharField(max_length=64, blank=True, default="")
    body = models.BinaryField(default=b"")
    signature = models.BinaryField(default=b"")
    received_from = models.CharField(max_length=32, blank=True, default="", help_text="the peer it came from")
    received_at = models.DateTimeField(null=True, blank=True)
    banned = models.BooleanField(default=False, help_text="refused whoever relays it")

    class Meta:
        ordering = ("origin_id",)

    def __str__(self) -> str:
        return f"{self.name or self.origin_id} #{self.sequence}"


class PeerNetwork(models.Model):
    """No table: anchors the admin's Peer Network page (the django-rq pattern)."""

    class Meta:
        managed = False
        default_permissions = ("view",)
        verbose_name = "peer network"
        verbose_name_plural = "peer network"

    def __str__(self) -> str:
        return "Peer Network"


class PoolSample(models.Model):
    """The pool's size at one moment: sampled once a minute by the beat, kept for a day (peers.history)."""

    sampled_at = models.DateTimeField(db_index=True)
    local = models.PositiveIntegerField(help_text="local advertisements (this node's public registers)")
    remote = models.PositiveIntegerField(help_text="remote advertisements (learnt from peers)")

    class Meta:
        ordering = ("sampled_at", "id")

    def __str__(self) -> str:
        return f"{self.sampled_at:%Y-%m-%d %H:%M} local={self.local} remote={self.remote}"


class PeerExchange(models.Model):
    """One gossip exchange with a peer, either way; the last few per peer are kept (peers.history)."""

    class Direction(models.TextChoices):
        OUTBOUND = "outbound", "this node called the peer"
        INBOUND = "inbound", "the peer called this node"

    peer = models.ForeignKey(Peer, on_delete=models.CASCADE, related_name="exchanges")
    at = models.DateTimeField()
    direction = models.CharField(max_length=8, choices=Direction.choices)
    # ok, refused_address, unreachable, rejected or reply_refused (peers.gossip.exchange.exchange_with's outcomes).
    outcome = models.CharField(max_length=16)
    duration_seconds = models.FloatField()
    bytes_sent = models.PositiveIntegerField(default=0)
    bytes_received = models.PositiveIntegerField(default=0)
    # The advertisements the peer's message stood for (its list, or the set its digest refreshed); null if none came.
    advertisements = models.PositiveIntegerField(null=True, blank=True)
    digest_only = models.BooleanField(default=False, help_text="the peer's message carried its digest, not its list")
    error = models.CharField(max_length=300, blank=True, default="")

    class Meta:
        ordering = ("id",)

    def __str__(self) -> str:
        return f"{self.peer} {self.direction} {self.at:%Y-%m-%d %H:%M:%S}: {self.outcome}"
