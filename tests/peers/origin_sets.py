"""Signed per-origin sets for the pure relayed-gossip tests (test_origins*.py): origins with keys
drawn from a fresh seed each run, sets signed as their origin would, and a fixed clock.

`SORCHA_ORIGINS_SEED=<seed>` replays a run (the keys, hence the origin ids and their order).
"""

from __future__ import annotations

import hashlib
import os
import random
import secrets
from dataclasses import dataclass
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peers.gossip import records
from peers.gossip.origins import Limits, MemoryRates, MemoryTable, Outcome, accept
from peers.gossip.records import SignedSet

SEED_VARIABLE = "SORCHA_ORIGINS_SEED"
SEED = int(os.environ.get(SEED_VARIABLE) or secrets.randbits(32))
REPLAY = f"origins seed {SEED}: replay with {SEED_VARIABLE}={SEED} pytest tests/peers/test_origins*.py"

NOW_MS = 1_700_000_000_000  # this node's clock
TTL_MS = 300_000  # ADVERTISEMENT_TTL
SKEW_MS = 300_000  # CLOCK_SKEW_MAX
WINDOW_MS = 60_000  # GOSSIP_RATE_WINDOW
LIMITS = Limits(
    ttl_ms=TTL_MS,
    skew_ms=SKEW_MS,
    max_origins=1_000,
    sets_per_sender=1_000,
    bumps_per_origin=1_000,
    window_ms=WINDOW_MS,
    budget_bytes=1 << 20,
)
SENDER = "relay-1"


@pytest.fixture(scope="module", autouse=True)
def announce_seed(request: pytest.FixtureRequest) -> None:
    """The seed on the terminal whatever the outcome (output capture is on during fixtures)."""
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capture is not None:
        with capture.global_and_fixture_disabled():
            reporter.write_line(REPLAY)


def register_id(label: str) -> str:
    return hashlib.sha256(label.encode()).hexdigest()[:32]


def advertisement(label: str, **fields: Any) -> dict[str, Any]:
    return {"registerId": register_id(label), "name": f"register {label}", **fields}


def sign(body: bytes, private_key_hex: str) -> SignedSet:
    """Any bytes, signed the way an origin signs its set (domain prefix first)."""
    key = Ed25519PrivateKey.from_private_bytes(bytes.fromhex(private_key_hex))
    return SignedSet(body, key.sign(records.DOMAIN + body))


@dataclass(frozen=True)
class Origin:
    """A node that publishes sets: its key is drawn from the run's seed and its label."""

    label: str

    @property
    def private_key(self) -> str:
        return random.Random(f"{SEED}:{self.label}").randbytes(32).hex()

    @property
    def key(self) -> Ed25519PrivateKey:
        return Ed25519PrivateKey.from_private_bytes(bytes.fromhex(self.private_key))

    @property
    def public_key(self) -> str:
        return self.key.public_key().public_bytes_raw().hex()

    @property
    def origin_id(self) -> str:
        return records.origin_id_for(self.public_key)

    def publish(
        self,
        sequence: int = 1,
        *,
        advertisements: list[dict[str, Any]] | None = None,
        issued_at_ms: int = NOW_MS,
        ttl_ms: int = TTL_MS,
        url: str | None = None,
        name: str | None = None,
    ) -> SignedSet:
        return records.publish(
            self.private_key,
            url=url if url is not None else f"https://{self.label}.example",
            name=name if name is not None else f"node {self.label}",
            sequence=sequence,
            issued_at_ms=issued_at_ms,
            ttl_ms=ttl_ms,
            advertisements=[advertisement(self.label)] if advertisements is None else advertisements,
        )


def fresh_table(own: str = "self") -> MemoryTable:
    return MemoryTable(own_id=Origin(own).origin_id)


def take(
    signed: SignedSet,
    table: MemoryTable,
    *,
    now_ms: int = NOW_MS,
    limits: Limits = LIMITS,
    sender: str = SENDER,
    rates: MemoryRates | None = None,
    verified_url: bool = False,
) -> Outcome:
    return accept(
        signed,
        table,
        now_ms,
        limits,
        sender=sender,
        rates=rates if rates is not None else MemoryRates(limits.window_ms),
        verified_url=verified_url,
    )


def held_bytes(table: MemoryTable) -> dict[str, tuple[bytes, bytes, bool]]:
    """What a table holds, as the exact bytes it would relay (to compare before and after)."""
    return {origin: (record.signed.body, record.signed.signature, ok) for origin, (record, ok) in table.sets.items()}
