"""The encoded available list: exactly the bytes of the aggregated rows, whatever the mirror holds.

The encoded list is `orjson.dumps(aggregate(...))` of the mirror, after any change, refreshes
included. Names and descriptions
may hold any text, including the text that begins a row, and a corrupt stored value may hold an
object or a list where a text belongs.
"""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from peers.store.encoded import EncodedList
from peers.store.mirror import Mirror
from peers.store.model import Entry, encode_value
from peers.store.redis_io import Keys
from peers.store.render import aggregate

# Texts a register may be given, including the text the encoder cuts rows at, quotes and braces.
TEXTS = st.one_of(
    st.sampled_from(["", "ledger", "Ledger", 'x},{"registerId":"y', '"', "}", '},{"registerId":', "é", "É"]),
    st.text(max_size=12),
)
IDS = st.sampled_from([f"{n:032x}" for n in range(40)])


# What a corrupt stored value may hold where a description belongs: JSON that is not flat.
NESTED = st.recursive(
    st.one_of(st.none(), TEXTS, st.integers(-(10**6), 10**6)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.sampled_from(["registerId", "x"]), inner)),
    max_leaves=6,
)


DESCRIPTIONS = st.one_of(st.none(), TEXTS)


def fields(description: st.SearchStrategy = DESCRIPTIONS) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "name": TEXTS,
            "description": description,
            "latestVersion": st.one_of(st.none(), st.integers(0, 10**6)),
            "latestDocketVersion": st.one_of(st.none(), st.integers(0, 10**6)),
            "isFullReplica": st.booleans(),
        }
    )


def entry(register_id: str, peer_id: str | None, held: dict, seen: float, verified: bool) -> Entry:
    return Entry(register_id, peer_id, 1, held, encode_value(1, held), seen, seen + 300, verified)


SEEN = st.floats(1.7e9, 1.8e9, allow_nan=False)
LOCAL = st.dictionaries(IDS, st.tuples(fields(st.one_of(st.none(), TEXTS, NESTED)), SEEN, st.booleans()), max_size=25)
# (Voting compares the peers' values, so theirs stay texts.)
REMOTE = st.dictionaries(
    st.sampled_from(["peer-a", "peer-b", "peer-c"]),
    st.dictionaries(IDS, st.tuples(fields(), SEEN, st.booleans()), max_size=25),
    max_size=3,
)


def rendered(local: dict[str, Entry], remote: dict[str, dict[str, Entry]]) -> bytes:
    """The body a process serves for a mirror holding these entries."""
    mirror = Mirror(Keys("p"), 300.0)
    mirror.local, mirror.remote = local, remote
    return EncodedList().body(mirror)


@settings(max_examples=300, deadline=None)
@given(local=LOCAL, remote=REMOTE)
def test_the_encoded_list_is_the_aggregated_rows_one_per_register_local_ones_marked(local: dict, remote: dict) -> None:
    mirror = {rid: entry(rid, None, *held) for rid, held in local.items()}
    remote_mirror = {
        peer: {rid: entry(rid, peer, *held) for rid, held in held_by.items()} for peer, held_by in remote.items()
    }

    body = rendered(mirror, remote_mirror)
    rows = aggregate(mirror, remote_mirror)

    assert body == orjson.dumps(rows)
    remote_ids = {rid for held in remote.values() for rid in held}
    assert sorted(row["registerId"] for row in rows) == sorted(set(mirror) | remote_ids)
    for row in rows:
        assert row["isLocal"] == (row["registerId"] in mirror)
        assert row["peerCount"] == sum(1 for held in remote.values() if row["registerId"] in held)
    assert [(row["name"].lower(), row["registerId"]) for row in rows] == sorted(
        (row["name"].lower(), row["registerId"]) for row in rows
    )


def test_a_list_longer_than_the_chunks_its_fields_are_decoded_in_is_encoded_whole_and_in_order() -> None:
    count = 10_000  # (fields are decoded 4,096 entries at a time)
    held = {"name": "", "description": None, "latestVersion": 1, "latestDocketVersion": 1, "isFullReplica": False}
    mirror = {
        f"{n:032x}": entry(f"{n:032x}", None, {**held, "name": f"reg {count - n:05d}"}, 1.75e9, False)
        for n in range(count)
    }

    body = rendered(mirror, {})

    rows = orjson.loads(body)
    assert len(rows) == count
    assert [row["name"] for row in rows] == sorted(row["name"] for row in rows)
    assert [row["name"] for row in rows] == [mirror[row["registerId"]].fields["name"] for row in rows]
    assert body == orjson.dumps(aggregate(mirror, {}))


def test_a_corrupt_value_holding_what_begins_a_row_keeps_every_row_beside_it() -> None:
    held = {"name": "a", "description": None, "latestVersion": 1, "latestDocketVersion": 1, "isFullReplica": False}
    corrupt = {**held, "description": [{}, {"registerId": "zz"}]}
    mirror = {
        "r1": entry("r1", None, corrupt, 1.75e9, False),
        "r2": entry("r2", None, {**held, "name": "b"}, 1.75e9, False),
    }

    body = rendered(mirror, {})

    assert [row["registerId"] for row in orjson.loads(body)] == ["r1", "r2"]
    assert orjson.loads(body)[0]["description"] == [{}, {"registerId": "zz"}]
    assert body == orjson.dumps(aggregate(mirror, {}))


@settings(max_examples=300, deadline=None)
@given(local=LOCAL, remote=REMOTE, refreshed=st.lists(st.tuples(IDS, SEEN, st.booleans()), max_size=30))
def test_after_refreshes_only_the_list_is_still_the_aggregated_rows(
    local: dict, remote: dict, refreshed: list[tuple[str, float, bool]]
) -> None:
    mirror = Mirror(Keys("p"), 300.0)
    mirror.local = {rid: entry(rid, None, *held) for rid, held in local.items()}
    mirror.remote = {
        peer: {rid: entry(rid, peer, *held) for rid, held in held_by.items()} for peer, held_by in remote.items()
    }
    encoded = EncodedList()
    encoded.body(mirror)
    rows_version = mirror.rows_version

    for rid, seen, verified in refreshed:  # some refreshed as a full sync does, some verified or not
        mirror.refresh([rid], seen + 300)
        if rid in mirror.local:
            mirror.local[rid].verified = verified
        assert mirror.rows_version == rows_version  # (a refresh leaves the rows: only their tails move)
        assert encoded.body(mirror) == orjson.dumps(aggregate(mirror.local, mirror.remote))
