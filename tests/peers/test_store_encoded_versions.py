"""The encoded list across changes: one `EncodedList` kept over a mirror that Redis's states change
(as every process's is) serves exactly the aggregated rows after each change, though it keeps the
rows' order across refreshes and is not encoded again for changes the list does not show."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from peers.store.encoded import EncodedList
from peers.store.mirror import Mirror
from peers.store.model import encode_value
from peers.store.redis_io import Keys
from peers.store.render import aggregate

KEYS = Keys("p")
IDS = [f"{n:032x}" for n in range(12)]
# Names a row's tail must not be mistaken in (`tails`): the text of its key, quotes and braces.
NAMES = ["", "a", "B", "b", "ledger", "Ledger", "z", 'x"verified":true,"lastSeen":null}', "}", '"', "\\"]
EXPIRY_MS = 2_000_000_000_000


def value(name: str, stamp: int) -> str:
    fields = {"name": name, "description": "", "latestVersion": stamp, "latestDocketVersion": 1, "isFullReplica": True}
    return encode_value(stamp, fields)


# One change as a mirror takes it: (kind, register, peer, name, moment).
CHANGES = st.tuples(
    st.sampled_from(["write", "remove", "refresh", "tombstone", "remote", "remote-gone"]),
    st.sampled_from(IDS),
    st.sampled_from(["peer-a", "peer-b"]),
    st.sampled_from(NAMES),
    st.integers(0, 10_000),
)


def take(mirror: Mirror, change: tuple[str, str, str, str, int]) -> None:
    kind, rid, peer, name, moment = change
    expiry = EXPIRY_MS + moment
    if kind == "write":  # a new value (renamed, maybe: the order may change) or the same one refreshed
        mirror.apply([(KEYS.local(rid), value(name, 1 + moment % 3), expiry)])
    elif kind == "remove":
        mirror.apply([(KEYS.local(rid), "", -2)])
    elif kind == "refresh":
        mirror.refresh([rid], expiry / 1000)
    elif kind == "tombstone":
        mirror.apply([(KEYS.tomb(rid), f"{moment}|r", expiry)])
    elif kind == "remote":
        mirror.apply([(KEYS.remote(peer, rid), value(name, moment), expiry)])
    else:
        mirror.apply([(KEYS.remote(peer, rid), "", -2)])


@settings(max_examples=300, deadline=None)
@given(changes=st.lists(CHANGES, max_size=40))
def test_after_every_change_the_kept_encoding_is_the_aggregated_rows(changes: list) -> None:
    mirror, encoded = Mirror(KEYS, 300.0), EncodedList()
    for change in changes:
        take(mirror, change)
        assert encoded.body(mirror) == orjson.dumps(aggregate(mirror.local, mirror.remote))


def test_a_change_the_list_does_not_show_keeps_the_body_and_one_it_shows_encodes_it_again() -> None:
    mirror, encoded = Mirror(KEYS, 300.0), EncodedList()
    mirror.apply([(KEYS.local(IDS[0]), value("ledger", 1), EXPIRY_MS)])
    body = encoded.body(mirror)

    mirror.apply([(KEYS.tomb(IDS[1]), "5|r", EXPIRY_MS)])  # a tombstone: not a row of the list
    mirror.apply([(KEYS.meta, '7|{"lastSnapshotAt": 7}', EXPIRY_MS)])  # the full-sync state
    mirror.refresh([IDS[2]], EXPIRY_MS / 1000)  # an id this mirror does not hold

    assert encoded.body(mirror) is body
    mirror.refresh([IDS[0]], EXPIRY_MS / 1000 + 1)  # lastSeen moves
    again = encoded.body(mirror)
    assert again != body
    assert again == orjson.dumps(aggregate(mirror.local, mirror.remote))


def test_tails_that_change_length_or_rows_refreshed_over_and_over_keep_the_list_exact() -> None:
    """A refresh writes rows' tails anew (`tails`): unverified rows turning verified (their tail one byte
    shorter), moments on a whole second (no fraction), and refreshes of a few rows, then of all."""
    mirror, encoded = Mirror(KEYS, 300.0), EncodedList()
    ids = IDS[:6]
    page = (
        [KEYS.local(rid) for rid in ids] + [KEYS.remote("peer-a", IDS[7])],
        [value(NAMES[n % len(NAMES)], 1) for n in range(6)] + [value("remote", 1)],
        [EXPIRY_MS + n for n in range(7)],
    )
    mirror.load([page])  # as at start-up: nothing verified yet

    def exact() -> None:
        assert encoded.body(mirror) == orjson.dumps(aggregate(mirror.local, mirror.remote))

    exact()
    mirror.refresh(ids[:2], EXPIRY_MS / 1000 + 1)  # verified now, on a whole second
    exact()
    mirror.refresh(ids[1:3], EXPIRY_MS / 1000 + 1.25)
    exact()
    for step in range(1, 4):
        mirror.refresh(ids, EXPIRY_MS / 1000 + 1.5 + step / 1000)
        exact()
    mirror.apply([(KEYS.local(ids[4]), mirror.local[ids[4]].value, EXPIRY_MS + 9_999)])  # the same value again
    exact()
