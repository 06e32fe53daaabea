"""A read takes the log in as it read it before taking the store (`Committer.prefetch`) only if this
process has not moved since: otherwise what it read may be older than what the process wrote."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import orjson

from peers.store import now_micros
from tests.conftest import register_id
from tests.peers.store_io import MakeStore, SeenIO, public, seen_io


class FetchRaceIO(SeenIO):
    """The seam, with `after_fetch`: run once right after the store read states of keys from Redis."""

    after_fetch: Callable[[], None] | None = None

    def fetch(self, keys: Sequence[str]) -> list[tuple[str, str, int]]:
        fetched = super().fetch(keys)
        race, self.after_fetch = self.after_fetch, None
        if race is not None:
            race()
        return fetched


def test_a_read_does_not_take_in_what_it_read_before_its_own_process_wrote_a_newer_state(
    make_store: MakeStore,
) -> None:
    # given: a process whose watcher is off (only the read follows the log), and another that writes a
    # register this process has not followed yet
    store, other = make_store(io=FetchRaceIO, start_watcher=False), make_store()
    rid, stamp = register_id(), now_micros()
    other.advertise(public(rid, stamp, name="first"))

    # when: a read reads that entry and the register's state, then, before it takes the store, this
    # process writes a newer state of the register and answers
    def this_process_writes() -> None:
        store.advertise(public(rid, stamp + 1, name="second"))

    io = seen_io(store)
    assert isinstance(io, FetchRaceIO)
    io.after_fetch = this_process_writes
    listed = orjson.loads(store.available_json())

    # then: the read shows the newer state, and so does every later one (what it read first is not
    # taken over it)
    assert io.after_fetch is None  # (the race ran)
    assert [row["name"] for row in listed] == ["second"]
    assert [row["name"] for row in orjson.loads(store.available_json())] == ["second"]
    assert store.local_advertisement(rid).fields["name"] == "second"
