"""Delivering a flush of pushed changes (`registers.pushes`): the current state of the registers that
changed, in as few bulk requests as the Peer Service's bounds allow."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from registers.peer_client import PeerServiceClient, PeerServiceRejected
from registers.reads import changed_advertisements
from registers.wire import PEER_COUNTS, PlannedAdvertisement, bulk_chunks, change_body

# Refusals that can be about one item (or the size) of a request: halving the request finds it.
_ITEM_REFUSALS = frozenset({400, 413, 422})


@dataclass
class PushResult:
    """What one flush of coalesced changes did; `rejected` holds the Peer Service's 4xx answers."""

    registers_pushed: int = 0
    requests: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(PEER_COUNTS, 0))
    rejected: list[PeerServiceRejected] = field(default_factory=list)

    def summary(self) -> str:
        counts = " ".join(f"{name}={self.counts[name]}" for name in PEER_COUNTS if name not in ("processed", "held"))
        return f"registers={self.registers_pushed} requests={self.requests} {counts} rejected={len(self.rejected)}"


def push_changes(
    register_ids: Iterable[str],
    deleted_at: Mapping[str, datetime],
    *,
    heartbeat: Callable[[], None] | None = None,
    client: PeerServiceClient | None = None,
) -> PushResult:
    """Send the current state of the given registers in as few bulk requests as the Peer Service's bounds allow.

    Raises PeerServiceUnavailable when a request could not be delivered (the caller retries all of
    them: a repeated item is `unchanged`). A 4xx is not retried: the request is split in halves until
    the refused registers are alone, so one bad register does not hold the others back.
    `heartbeat`: called before each request (the caller's hold on its flush).
    """
    client = client or PeerServiceClient.from_settings()
    result = PushResult()
    for chunk in bulk_chunks(changed_advertisements(register_ids, deleted_at)):
        if chunk:
            _deliver(client, chunk, result, heartbeat)
    return result


def _deliver(
    client: PeerServiceClient,
    chunk: list[PlannedAdvertisement],
    result: PushResult,
    heartbeat: Callable[[], None] | None,
) -> None:
    if heartbeat is not None:
        heartbeat()
    result.requests += 1
    try:
        answer = client.bulk_advertise(change_body(chunk))
    except PeerServiceRejected as exc:
        if exc.status not in _ITEM_REFUSALS:
            raise  # not about an item (a token, a route): splitting would only multiply the refusals
        if len(chunk) == 1:
            result.rejected.append(exc)  # the client logged the Peer Service's answer
            return
        half = len(chunk) // 2
        _deliver(client, chunk[:half], result, heartbeat)
        _deliver(client, chunk[half:], result, heartbeat)
        return
    result.registers_pushed += len(chunk)
    for name in PEER_COUNTS:
        result.counts[name] += int(answer.get(name, 0))
