"""The encoded available list: exactly the bytes of the aggregated rows, whatever the mirror holds.

The encoder builds rows in the mirror's order, encodes them a chunk at a time and cuts each chunk
into rows at the text that begins a row; names and descriptions may hold any text, including that.
"""

from __future__ import annotations

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


def fields() -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries(
        {
            "name": TEXTS,
            "description": st.one_of(st.none(), TEXTS),
            "latestVersion": st.one_of(st.none(), st.integers(0, 10**6)),
            "latestDocketVersion": st.one_of(st.none(), st.integers(0, 10**6)),
            "isFullReplica": st.booleans(),
        }
    )


def entry(register_id: str, peer_id: str | None, held: dict, seen: float, verified: bool) -> Entry:
    return Entry(register_id, peer_id, 1, held, encode_value(1, held), seen, seen + 300, verified)


SEEN = st.floats(1.7e9, 1.8e9, allow_nan=False)
LOCAL = st.dictionaries(IDS, st.tuples(fields(), SEEN, st.booleans()), max_size=25)
REMOTE = st.dictionaries(st.sampled_from(["peer-a", "peer-b", "peer-c"]), LOCAL, max_size=3)


@settings(max_examples=300, deadline=None)
@given(local=LOCAL, remote=REMOTE)
def test_the_encoded_list_is_the_aggregated_rows_and_names_its_local_rows(local: dict, remote: dict) -> None:
    mirror = {rid: entry(rid, None, *held) for rid, held in local.items()}
    remote_mirror = {
        peer: {rid: entry(rid, peer, *held) for rid, held in held_by.items()} for peer, held_by in remote.items()
    }

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
