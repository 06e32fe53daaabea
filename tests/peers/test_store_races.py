"""Races between processes around one store's Redis calls, injected through its seam (`io=SeenIO`):
another process's write, or a restore of Redis, just before a script call or just after a head check.

Every store here runs on a real redis-server; "two processes" are two stores sharing a prefix.
"""

from __future__ import annotations

import orjson

from peers.store import AdvertisementStore, now_micros
from tests.conftest import register_id
from tests.peers.store_io import MakeStore, SeenIO, local_ids, public, redis_local_ids, seen_io
from tests.redis_server import RedisServer


# ---------------------------------------------------------------- a restore, or another process's write, mid-catch-up
def test_a_restore_and_another_processs_write_between_a_catch_up_and_a_commit_are_still_seen(
    make_store: MakeStore, private_redis: RedisServer
) -> None:
    # given: a process (no watcher) that wrote once more after a dump was taken
    store = make_store(redis=private_redis, start_watcher=False, io=SeenIO)
    kept, after_dump, theirs, mine = register_id(), register_id(), register_id(), register_id()
    store.advertise(public(kept, now_micros()))
    old_dump = private_redis.dump()
    store.advertise(public(after_dump, now_micros()))

    # when: a single push, with Redis going back to the dump and another process writing between the
    # push's catch-up and its commit: the other change follows the dump's last log entry, and this
    # process's write follows the other change (not the entry this process last applied)
    def restore_and_write(ops: list[list[str]]) -> bool:
        private_redis.restore(old_dump)
        make_store(redis=private_redis, start_watcher=False).advertise(public(theirs, now_micros()))
        return True

    seen_io(store).before_commit = restore_and_write
    store.advertise(public(mine, now_micros()))

    # then: its own write is not taken for the next change after its place in the log: its next read
    # sees the other process's change, and the write the dump lost is written back
    assert local_ids(store) == {kept, after_dump, theirs, mine}
    assert redis_local_ids(store) == {kept, after_dump, theirs, mine}


def test_a_change_written_just_after_the_head_check_waits_for_the_next_read_without_a_reload(
    make_store: MakeStore,
) -> None:
    # given: a caught-up process whose pool reads are counted, and another process
    store, other = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    store.local_advertisements()
    io = seen_io(store)
    reads_at_start = io.pool_reads
    theirs = register_id()

    # when: a read checks the log's head (nothing new), and the other process writes just after
    io.after_head = lambda: other.advertise(public(theirs, now_micros()))
    first = local_ids(store)

    # then: that read serves what it had (the change is not taken for a gap: no reload of the whole pool),
    # and the next read applies the change from the log
    assert theirs not in first
    assert theirs in local_ids(store)
    assert io.pool_reads == reads_at_start


def test_a_change_written_between_the_head_check_and_the_catch_up_is_applied_by_that_catch_up(
    make_store: MakeStore,
) -> None:
    # given: a caught-up process whose pool reads are counted, and another process that wrote a change
    store, other = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    store.local_advertisements()
    io = seen_io(store)
    reads_at_start = io.pool_reads
    first, second = register_id(), register_id()
    other.advertise(public(first, now_micros()))

    # when: a read finds the head moved on, and the other process writes again before the catch-up reads the log
    io.after_head = lambda: other.advertise(public(second, now_micros()))
    held = local_ids(store)

    # then: the catch-up applies both changes, in order from the entry it held, without reloading the pool
    assert {first, second} <= held
    assert io.pool_reads == reads_at_start
    assert store.committer.position == other.committer.position


# ---------------------------------------------------------------- another process's write just before a script call
def test_a_batch_that_changed_nothing_does_not_hide_another_processs_change(make_store: MakeStore) -> None:
    first, second = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    kept = register_id()
    first.advertise(public(kept, now_micros()))
    added_elsewhere = register_id()

    # A chunk of a full sync at `first`: its item is written (and logged), then its marks, a batch that
    # changes no key (and appends nothing to the log); the other process writes just before the marks.
    def write_elsewhere_before_the_marks(ops: list[list[str]]) -> bool:
        if not any(op[0] == "A" for op in ops):
            return False
        second.advertise(public(added_elsewhere, now_micros()))
        return True

    seen_io(first).before_commit = write_elsewhere_before_the_marks
    first.apply_bulk([public(kept, now_micros())], snapshot_at=now_micros())

    assert seen_io(first).before_commit is None  # the other process did write between the two batches
    assert local_ids(first) == {kept, added_elsewhere}


def test_a_refused_removal_leaves_the_newer_entry_in_the_mirror(make_store: MakeStore) -> None:
    first, second = make_store(start_watcher=False, io=SeenIO), make_store(start_watcher=False)
    rid = register_id()
    first.advertise(public(rid, 1_000_000_000_000_000))

    # `first` removes with a stamp between its entry and a newer one that `second` writes after `first`
    # caught up and before its removal reaches Redis: Redis refuses the removal.
    def newer_written_elsewhere(ops: list[list[str]]) -> bool:
        second.advertise(public(rid, 3_000_000_000_000_000, name="newer"))
        return True

    seen_io(first).before_commit = newer_written_elsewhere
    result = first.remove(rid, source_updated_at=2_000_000_000_000_000)

    # The refusal is not taken for a removal: the mirror keeps an entry and takes no tombstone,
    assert result.removed == 0
    assert rid in first.mirror.local and rid not in first.mirror.tombstones
    # and what Redis holds (the newer entry, no tombstone) is what the process serves from then on.
    assert store_holds(first, rid) == "newer" and first.client.get(first.tomb_key(rid)) is None
    entry = first.local_advertisement(rid)
    assert entry is not None and entry.fields["name"] == "newer"
    assert rid not in first.mirror.tombstones


def store_holds(store: AdvertisementStore, rid: str) -> str | None:
    """The name Redis holds for a local advertisement."""
    raw = store.client.get(store.local_key(rid))
    return None if raw is None else orjson.loads(raw.decode().split("|", 1)[1])["name"]
