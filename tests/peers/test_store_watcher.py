"""The store's watcher thread on a real Redis: it follows the change log by itself, catching up with
other processes' changes (not its own), and prunes expired tombstones however busy the store keeps it."""

from __future__ import annotations

import threading

from peers.store import now_micros
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.peers.store_io import MakeStore, SeenIO, public, seen_io


# ---------------------------------------------------------------- the watcher
def test_the_watcher_catches_up_with_another_processs_change_but_not_with_its_own(make_store: MakeStore) -> None:
    # given: a store whose Redis calls are seen (where its watcher waits on the change log, and every
    # catch-up that reads the log's entries), and no periodic wake-up in the test (it waits 30 s at most)
    other = make_store(start_watcher=False)
    watched = make_store(breaker_cooldown=60.0, socket_timeout=60.0, io=SeenIO)
    io = seen_io(watched)
    stamp = now_micros()

    # when: it writes 10 changes of its own, its watcher waiting after each before the next ...
    for _ in range(10):
        watched.advertise(public(register_id(), stamp))
        wait_until(
            lambda: io.waited_after[-1:] == [watched.committer.position],
            timeout=10,
            message="the watcher never waited again",
        )
    # ... then another process writes one
    theirs = register_id()
    other.advertise(public(theirs, stamp))

    # then: the watcher takes the other process's change into the mirror by itself (no read asks it to),
    # and read the log for no catch-up of its own 10: it followed them as it wrote them (each catch-up
    # would hold the store from its next write and its reads for nothing)
    wait_until(lambda: theirs in watched.mirror.local, timeout=10, message="the watcher never caught up")
    assert io.catch_ups == ["store-watcher-" + watched.prefix]


def test_a_watcher_kept_busy_by_its_own_writes_still_prunes_expired_tombstones(make_store: MakeStore) -> None:
    # given: a removal's tombstone, living one TTL (a second), in a store whose watcher waits 0.2 s at most
    # and is woken by every change of its own (each one followed as it was written: nothing to catch up)
    store = make_store(ttl=1.0)
    removed, stamp = register_id(), now_micros()
    store.advertise(public(removed, stamp))
    store.remove(removed, source_updated_at=stamp + 1)
    assert removed in store.mirror.tombstones

    # when: the store keeps writing changes of its own, more often than its watcher waits
    stop = threading.Event()

    def keep_writing() -> None:
        while not stop.wait(0.05):
            store.advertise(public(register_id(), now_micros()))

    writer = threading.Thread(target=keep_writing, daemon=True)
    writer.start()
    try:
        # then: the expired tombstone is dropped all the same (no read prunes it here: the watcher does)
        wait_until(lambda: removed not in store.mirror.tombstones, timeout=10, message="the tombstone was never pruned")
    finally:
        stop.set()
        writer.join(timeout=5)
