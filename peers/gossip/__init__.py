"""Signed push-pull gossip: each node's signed set of its public registers, relayed to the whole network.

- `records`: a node's signed advertisement set, as every node relays it unchanged.
- `origins`: which sets a node takes (the accept rules) and which it offers (pure).
- `antientropy`: one exchange's steps, Syn, Ack, Ack2, Done, and a round's fan-out (pure).
- `relay`: the sets this node holds (database rows, the store), its own set, taking sets from a peer.

- `messages`: the wire models, this node's own signed message (its local set and digest) and
  verifying a peer's message (size, shape, signature, clock).
- `inbound`: accepting a verified message (admission, replay, room) into the store and the reply to it.
- `exchange`: one outbound exchange with a peer, its reply, and backing the peer off when it fails.
- `rounds`: which peers are due, one round at a time per process, and the debounced triggered round.

Operator actions on a peer are in `peers.peer_actions`; the JSON form of a peer in `peers.api.peer_json`.
"""
