"""The encoded available list: exactly the bytes of the aggregated rows, whatever the mirror holds.

The encoder builds rows in the mirror's order, encodes them a chunk at a time and cuts each chunk
into rows at the text that begins a row; names and descriptions may hold any text, including that,
and a corrupt stored value may hold an object or a list where a text belongs.
"""

from __future__ import annotations

from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from peers.store import view
from peers.store.model import Entry, encode_value

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


@settings(max_examples=300, deadline=None)
@given(local=LOCAL, remote=REMOTE, chunk=st.sampled_from([1, 3, 4_096]))
def test_the_encoded_list_is_the_aggregated_rows_and_names_its_local_rows(
    local: dict, remote: dict, chunk: int
) -> None:
    mirror = {rid: entry(rid, None, *held) for rid, held in local.items()}
    remote_mirror = {
        peer: {rid: entry(rid, peer, *held) for rid, held in held_by.items()} for peer, held_by in remote.items()
    }

    with mock.patch.object(view, "_CHUNK", chunk):  # chunks of one row, of a few, and of all
        body, local_ids = view.encode_list(mirror, remote_mirror)
    rows = view.aggregate(mirror, remote_mirror)

    assert body == orjson.dumps(rows)
    assert local_ids == [row["registerId"] if row["isLocal"] else None for row in rows]


def test_a_list_longer_than_a_chunk_is_encoded_whole_and_in_order() -> None:
    count = 2 * view._CHUNK + 5
    held = {"name": "", "description": None, "latestVersion": 1, "latestDocketVersion": 1, "isFullReplica": False}
    mirror = {
        f"{n:032x}": entry(f"{n:032x}", None, {**held, "name": f"reg {count - n:05d}"}, 1.75e9, False)
        for n in range(count)
    }

    body, local_ids = view.encode_list(mirror, {})

    rows = orjson.loads(body)
    assert [row["name"] for row in rows] == sorted(row["name"] for row in rows)
    assert body == orjson.dumps(view.aggregate(mirror, {}))
    assert local_ids == [row["registerId"] for row in rows]


def test_a_corrupt_value_holding_what_begins_a_row_keeps_every_row_of_its_chunk() -> None:
    held = {"name": "a", "description": None, "latestVersion": 1, "latestDocketVersion": 1, "isFullReplica": False}
    corrupt = {**held, "description": [{}, {"registerId": "zz"}]}
    mirror = {
        "r1": entry("r1", None, corrupt, 1.75e9, False),
        "r2": entry("r2", None, {**held, "name": "b"}, 1.75e9, False),
    }

    body, local_ids = view.encode_list(mirror, {})

    assert [row["registerId"] for row in orjson.loads(body)] == ["r1", "r2"] == local_ids
    assert body == orjson.dumps(view.aggregate(mirror, {}))
