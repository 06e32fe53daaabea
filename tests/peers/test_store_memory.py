"""The store's compact mirror: entries that keep only their encoded value, a rendering that keeps
only its body (patched in place by a refresh) in a cache that keeps references."""

from __future__ import annotations

from collections.abc import Callable

import orjson
import pytest

from peers.store import AdvertisementInput, AdvertisementStore, now_micros, view
from peers.store.model import Entry, encode_value
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.plugin import SESSION_REDIS

MakeStore = Callable[..., AdvertisementStore]


def public(rid: str, stamp: int, name: str = "ledger") -> AdvertisementInput:
    return AdvertisementInput(rid, True, name=name, description=f"{name} register", source_updated_at=stamp)


# ---------------------------------------------------------------- entries
def test_an_entry_decodes_its_fields_from_its_value_and_they_cannot_be_changed() -> None:
    fields = {"name": "ledger", "description": "", "latestVersion": 3, "latestDocketVersion": 1, "isFullReplica": True}
    entry = Entry(register_id(), None, 7, fields, encode_value(7, fields), 1.0, 301.0, False)

    assert entry.fields == fields
    with pytest.raises(TypeError):
        entry.fields["name"] = "forged"  # type: ignore[index]
    assert entry.as_dict()["name"] == "ledger"


def test_a_value_redis_holds_that_does_not_decode_is_left_out_of_the_mirror(make_store: MakeStore, prefix: str) -> None:
    kept, broken = register_id(), register_id()
    make_store().advertise(public(kept, now_micros()))
    SESSION_REDIS.client().set(f"{prefix}:ad:l:{broken}", "12|{not json", px=300_000)

    store = make_store()

    assert {entry.register_id for entry in store.local_advertisements()} == {kept}


@pytest.mark.parametrize(
    "malformed",
    [
        "12|[1,2]",
        # Two objects: a page checked as one JSON array would take them for two well-formed values.
        '12|{"name":"a"},{"name":"b"}',
    ],
)
def test_a_value_whose_fields_are_not_an_object_is_left_out_and_the_rest_of_its_page_is_kept(
    make_store: MakeStore, prefix: str, malformed: str
) -> None:
    kept = [register_id() for _ in range(3)]
    make_store().apply_bulk([public(rid, now_micros()) for rid in kept])
    client = SESSION_REDIS.client()
    client.set(f"{prefix}:ad:l:{register_id()}", malformed, px=300_000)
    client.set(f"{prefix}:ad:l:{register_id()}", "no stamp", px=300_000)

    store = make_store()

    assert {entry.register_id for entry in store.local_advertisements()} == set(kept)
    assert {row["registerId"] for row in orjson.loads(store.available_json())} == set(kept)


# ---------------------------------------------------------------- the rendering
def last_seen(body: bytes) -> dict[str, str]:
    return {row["registerId"]: row["lastSeen"] for row in orjson.loads(body) if row["isLocal"]}


def fully_synced(make_store: MakeStore, count: int) -> tuple[AdvertisementStore, AdvertisementStore, list, int]:
    """A writer and a reader sharing a pool, after a full sync of `count` local ads by the writer."""
    writer, reader = make_store(), make_store()
    stamp = now_micros()
    ads = [public(register_id(), stamp, name=f"ledger-{n}") for n in range(count)]
    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 1)
    return writer, reader, ads, stamp


@pytest.mark.parametrize("count", [50, 5_000], ids=["a few rows", "more rows than one chunk of the patch"])
def test_a_full_sync_that_only_refreshes_patches_the_served_list_into_what_a_full_render_gives(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch, count: int
) -> None:
    written_over: list[int] = []  # rows each patch wrote (the real one runs)
    write_over = view._written_over
    monkeypatch.setattr(
        view, "_written_over", lambda body, tails, new: written_over.append(len(new)) or write_over(body, tails, new)
    )
    writer, reader, ads, stamp = fully_synced(make_store, count)
    writer.replace_remote("peer-a", [public(ads[0].register_id, 0, name="theirs"), public(register_id(), 0)])
    reader.available_json()  # served: later changes render for readers

    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 2)  # nothing changed: only refreshed
    body = reader.available_json()

    assert body == orjson.dumps(reader.available())
    assert reader._rendering._tails is not None  # patched (where the tails lie is known), not rendered again
    assert all(row["verified"] for row in orjson.loads(body) if row["isLocal"])

    # A later refresh changes only `lastSeen`, a tail of the same length: written over in place.
    before = last_seen(body)
    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 3)
    again = reader.available_json()

    assert again == orjson.dumps(reader.available())
    assert all(seen > before[rid] for rid, seen in last_seen(again).items())
    assert written_over and set(written_over) == {count}  # patched, not rendered: every local row, across chunks


def test_another_processs_refresh_is_patched_at_once_where_the_list_is_read_and_on_the_next_read_elsewhere(
    make_store: MakeStore,
) -> None:
    writer, reader, ads, stamp = fully_synced(make_store, 20)
    wait_until(lambda: len(reader.local_advertisements()) == 20)
    before = last_seen(reader.available_json())  # read: the watcher patches the next refresh itself

    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 2)  # only refreshes
    wait_until(lambda: reader._stream_id == writer._stream_id)

    patched = reader._rendering.fresh(reader._version)
    assert patched is not None and all(last_seen(patched)[rid] > seen for rid, seen in before.items())

    # Nobody read that body: the next refresh waits for a reader, who gets it patched.
    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 3)
    wait_until(lambda: reader._stream_id == writer._stream_id)

    assert reader._rendering.fresh(reader._version) == patched
    body = reader.available_json()
    assert body == orjson.dumps(reader.available())
    assert all(last_seen(body)[rid] > seen for rid, seen in last_seen(patched).items())


def test_the_rendering_cache_hands_back_the_body_itself_not_a_copy() -> None:
    from django.core.cache import caches

    body = b"[" + b"0," * 1000 + b"0]"
    caches["renderings"].set("probe", (1, body), 30)

    assert caches["renderings"].get("probe")[1] is body
    caches["renderings"].delete("probe")


def test_two_corrupt_values_that_make_valid_json_together_are_both_left_out(make_store: MakeStore, prefix: str) -> None:
    kept = register_id()
    make_store().advertise(public(kept, now_micros()))
    client = SESSION_REDIS.client()
    # Joined into one array they would read as two objects: `[{"a":"},{"},{}]`.
    client.set(f"{prefix}:ad:l:{register_id()}", '12|{"a":"}', px=300_000)
    client.set(f"{prefix}:ad:l:{register_id()}", '12|{"},{}', px=300_000)

    store = make_store()

    assert {entry.register_id for entry in store.local_advertisements()} == {kept}


def test_a_render_of_a_large_list_empties_the_free_lists_after_it_and_a_small_one_does_not(
    make_store: MakeStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    from peers.store import facade

    dropped: list[int] = []  # the rows of the render after which the free lists were emptied (they are)
    store = make_store()
    drop = facade.drop_free_lists
    monkeypatch.setattr(facade, "drop_free_lists", lambda: dropped.append(store._rendering.rows) or drop())
    monkeypatch.setattr(facade, "_RELEASE_AFTER_ROWS", 3)
    stamp = now_micros()
    store.apply_bulk([public(register_id(), stamp, name=f"ledger-{n}") for n in range(2)])
    store.available_json()  # 2 rows

    store.advertise(public(register_id(), stamp))  # served: rendered again after the write, 3 rows
    store.available_json()

    assert dropped == [3]
