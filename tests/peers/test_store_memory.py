"""The store's compact mirror: entries that keep only their encoded value, and a rendering that keeps
one body, that of the mirror's current version, which a refresh made anywhere renders again alike."""

from __future__ import annotations

import time
from collections.abc import Callable

import orjson
import pytest

from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from peers.store.encoded import EncodedList
from peers.store.mirror import Mirror
from peers.store.model import Entry, encode_value
from peers.store.redis_io import Keys
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


def a_later_millisecond(store: AdvertisementStore) -> None:
    """Wait until the clock passed the store's last refresh: TTLs count in ms, so the next one moves lastSeen."""
    moment = max(entry.refreshed_at for entry in store.local_advertisements())
    wait_until(lambda: time.time() > moment + 0.002, timeout=5, message="the clock never passed the refresh")


def test_the_rendering_keeps_one_body_that_of_the_mirrors_current_version() -> None:
    mirror, rendering = Mirror(Keys("p"), 300.0), EncodedList()
    empty = rendering.body(mirror)
    assert rendering.body(mirror) is empty  # kept: not encoded again while the mirror is unchanged
    version, rid = mirror.version, register_id()
    held = {"name": "ledger", "description": "", "latestVersion": 1, "latestDocketVersion": 1, "isFullReplica": False}

    mirror.apply([(mirror.keys.local(rid), encode_value(7, held), 2_000_000_000_000)])
    body = rendering.body(mirror)

    assert [row["registerId"] for row in orjson.loads(body)] == [rid]
    assert rendering.body_for(mirror.version) is body
    assert rendering.body_for(version) is None  # the older body is not kept beside it


@pytest.mark.parametrize("count", [50, 5_000], ids=["a few rows", "more rows than one chunk of the render"])
def test_a_full_sync_that_only_refreshes_serves_what_a_full_render_gives_with_every_last_seen_moved(
    make_store: MakeStore, count: int
) -> None:
    writer, reader, ads, stamp = fully_synced(make_store, count)
    writer.replace_remote("peer-a", [public(ads[0].register_id, 0, name="theirs"), public(register_id(), 0)])
    reader.available_json()  # served once before the refreshes

    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 2)  # nothing changed: only refreshed
    body = reader.available_json()

    assert body == orjson.dumps(reader.available()) == writer.available_json()
    assert all(row["verified"] for row in orjson.loads(body) if row["isLocal"])

    # A later refresh changes only `lastSeen`: every local row shows the later moment, in every process.
    before = last_seen(body)
    a_later_millisecond(writer)
    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 3)
    again = reader.available_json()

    assert again == orjson.dumps(reader.available()) == writer.available_json()
    assert len(last_seen(again)) == count
    assert all(seen > before[rid] for rid, seen in last_seen(again).items())


def test_another_processs_refresh_is_taken_by_the_watcher_before_any_read_and_served_by_the_next(
    make_store: MakeStore,
) -> None:
    writer, reader, ads, stamp = fully_synced(make_store, 20)
    wait_until(lambda: len(reader.local_advertisements()) == 20)
    before = last_seen(reader.available_json())
    expiring_at = {rid: entry.expires_at for rid, entry in reader.mirror.local.items()}
    a_later_millisecond(writer)

    writer.apply_bulk(ads, full_sync=True, snapshot_at=stamp + 2)  # only refreshes

    # The reader's watcher follows the log to the refresh with no read asking it to ...
    wait_until(
        lambda: reader.committer.position == writer.committer.position, timeout=10, message="the watcher never followed"
    )
    expiries = {rid: entry.expires_at for rid, entry in reader.mirror.local.items()}
    assert expiries == {rid: entry.expires_at for rid, entry in writer.mirror.local.items()}
    assert all(expiries[rid] > expiring_at[rid] for rid in expiring_at)
    # ... and the next read serves the refreshed list, as the writer does.
    body = reader.available_json()
    assert body == orjson.dumps(reader.available()) == writer.available_json()
    assert all(last_seen(body)[rid] > seen for rid, seen in before.items())


def test_two_corrupt_values_that_make_valid_json_together_are_both_left_out(make_store: MakeStore, prefix: str) -> None:
    kept = register_id()
    make_store().advertise(public(kept, now_micros()))
    client = SESSION_REDIS.client()
    # Joined into one array they would read as two objects: `[{"a":"},{"},{}]`.
    client.set(f"{prefix}:ad:l:{register_id()}", '12|{"a":"}', px=300_000)
    client.set(f"{prefix}:ad:l:{register_id()}", '12|{"},{}', px=300_000)

    store = make_store()

    assert {entry.register_id for entry in store.local_advertisements()} == {kept}
