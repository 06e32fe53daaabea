"""The available list as the store renders it (issue 13): kept per mirror version and served as it is,
dropping an entry at its expiry, and served at once to a read while a bulk write holds the store."""

from __future__ import annotations

import threading
import time
from typing import Any

import orjson

from peers.store import AdvertisementStore, now_micros
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.peers.store_io import MakeStore, SeenIO, public, seen_io


# ---------------------------------------------------------------- issue 13: the rendering kept per mirror version
def test_the_available_list_is_kept_while_the_mirror_is_unchanged_and_served_as_it_is(
    api: Any, peer_store: AdvertisementStore
) -> None:
    peer_store.advertise(public(register_id(), now_micros()))

    body = api.get("/api/registers/available").content

    kept = peer_store.available_json()
    assert kept == body
    assert peer_store.available_json() is kept  # the same body, not encoded again
    peer_store.advertise(public(register_id(), now_micros()))
    changed = peer_store.available_json()
    assert changed is not kept and len(orjson.loads(changed)) == 2
    assert api.get("/api/registers/available").content == changed


def test_an_entry_leaves_the_kept_list_at_its_expiry(make_store: MakeStore) -> None:
    store = make_store(ttl=1.0)
    rid = register_id()
    _, entry = store.advertise(public(rid, now_micros()))
    assert entry is not None
    listed = store.available_json()
    assert [row["registerId"] for row in orjson.loads(listed)] == [rid]

    gone_at = wait_until(
        lambda: time.time() if store.available_json() == b"[]" else None, timeout=10, message="never dropped"
    )

    assert gone_at >= entry.expires_at  # not before its expiry: until then the kept list lists it
    assert store.local_advertisements() == []


def test_a_read_during_a_bulk_write_gets_the_current_rendering_at_once_and_one_after_it_sees_the_write(
    make_store: MakeStore,
) -> None:
    store = make_store(io=SeenIO)
    store.advertise(public(register_id(), now_micros()))
    before = store.available_json()
    holding, release = threading.Event(), threading.Event()

    def held_in_redis(ops: list[list[str]]) -> bool:  # the bulk's script call waits, the store held meanwhile
        holding.set()
        release.wait(10)
        return True

    seen_io(store).before_commit = held_in_redis

    def bulk_write_in_progress() -> None:
        store.apply_bulk([public(register_id(), now_micros())])

    writer = threading.Thread(target=bulk_write_in_progress)
    writer.start()
    assert holding.wait(10)
    started = time.monotonic()
    during = store.available_json()
    waited = time.monotonic() - started
    release.set()
    writer.join(10)

    assert waited < 1.0  # the writer holds the store for up to 10 s
    assert during == before
    assert len(orjson.loads(store.available_json())) == 2


def test_a_read_during_a_bulk_write_shows_a_write_another_process_answered_meanwhile(make_store: MakeStore) -> None:
    """The list as it was before a bulk write is served only while no other process has written since:
    a write another process answered during the bulk shows in every read made after it."""
    store, other = make_store(io=SeenIO), make_store()
    store.advertise(public(register_id(), now_micros()))
    store.available_json()
    holding, release = threading.Event(), threading.Event()

    def held_in_redis(ops: list[list[str]]) -> bool:
        holding.set()
        release.wait(10)
        return True

    seen_io(store).before_commit = held_in_redis
    writer = threading.Thread(target=lambda: store.apply_bulk([public(register_id(), now_micros())]))
    writer.start()
    assert holding.wait(10)
    answered = register_id()
    other.advertise(public(answered, now_micros()))  # answered while the bulk holds `store`

    reads: list[bytes] = []
    reader = threading.Thread(target=lambda: reads.append(store.available_json()))
    reader.start()
    reader.join(0.5)  # (a read that returns at once returns here; one that waits for the bulk is released below)
    release.set()
    reader.join(10)
    writer.join(10)

    assert answered in {row["registerId"] for row in orjson.loads(reads[0])}


class HeldReplies(SeenIO):
    """Each script call's reply held, once Redis has taken the call, until the test releases it; the
    threads that read the log's head seen."""

    def __init__(self, *args: Any) -> None:
        super().__init__(*args)
        self.taken = [threading.Event(), threading.Event()]
        self.released = [threading.Event(), threading.Event()]
        self.heads_read_by: list[str] = []
        self.hold = False

    def commit(self, now_ms: int, log_ttl_ms: int, batch: bytes) -> Any:
        reply = super().commit(now_ms, log_ttl_ms, batch)
        calls = len(self.batches)
        if self.hold and calls <= len(self.taken):
            self.taken[calls - 1].set()
            self.released[calls - 1].wait(10)
        return reply

    def head(self) -> bytes:
        head = super().head()
        self.heads_read_by.append(threading.current_thread().name)  # (once read: the test moves on then)
        return head


def test_a_read_during_a_bulk_write_whose_newest_commit_is_still_answering_waits_for_that_reply_not_the_write(
    make_store: MakeStore,
) -> None:
    """The log's head is often a commit of the bulk that Redis has taken and whose reply is on its way:
    a read waits for that reply, then gets the list as it was before the bulk, not after the whole bulk."""
    store = make_store(io=HeldReplies, commit_batch=1)
    io = store.committer.io
    assert isinstance(io, HeldReplies)
    store.advertise(public(register_id(), now_micros()))
    before = store.available_json()
    io.batches.clear()
    io.hold = True
    writer = threading.Thread(target=lambda: store.apply_bulk([public(register_id(), now_micros()) for _ in range(3)]))
    writer.start()
    try:
        assert io.taken[0].wait(10)  # Redis took the bulk's first commit; its reply is held
        reads: list[bytes] = []
        reader = threading.Thread(target=lambda: reads.append(store.available_json()), name="reader")
        reader.start()
        wait_until(lambda: "reader" in io.heads_read_by, timeout=10, message="the read never looked at the log")
        io.released[0].set()  # the first reply arrives; the second commit's stays held

        assert io.taken[1].wait(10)
        reader.join(10)
        assert not reader.is_alive(), "the read waited for the whole bulk write"
        assert reads == [before]
    finally:
        for released in io.released:
            released.set()
        writer.join(10)
    assert len(orjson.loads(store.available_json())) == 4
