"""Fixtures shared by the Peer Service's tests."""

from tests.peers.wire import wire  # noqa: F401  (the recorded wire of outbound gossip calls)
