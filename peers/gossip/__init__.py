"""Signed push-pull gossip: each node tells its peers its complete set of its own public registers.

- `messages`: the wire models, this node's own signed message (its local set and digest) and
  verifying a peer's message (size, shape, signature, clock).
- `inbound`: accepting a verified message (admission, replay, room) into the store and the reply to it.
- `exchange`: one outbound exchange with a peer, its reply, and backing the peer off when it fails.
- `rounds`: which peers are due, one round at a time per process, and the debounced triggered round.

Operator actions on a peer are in `peers.peer_actions`; the JSON form of a peer in `peers.api.peer_json`.
"""
