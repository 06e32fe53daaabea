"""Rows' tails in the encoded list: what a refresh moves, written anew without encoding the list.

Every row of the available list ends with the same two members, its *tail*:
`"verified":…,"lastSeen":…}`. A full sync's refreshes (a digest sync that finds nothing
changed, or a plain one that sends the same values) move these two members of the refreshed
local rows and nothing else: the rows, their order and every other byte of the list stay
(`Mirror.rows_version` does not move). So the list after such a change is the list before it
with the tails of the rows the mirror names (`Mirror.take_moved`) written anew: a copy of the
bytes and a few operations per row refreshed, instead of decoding every entry's fields,
building every row and encoding them again.

Where each tail sits is found once in the encoded bytes (`offsets`): the text `"verified":`
occurs once per row, as its key, because a row is a flat object and a quote inside a JSON string
is always escaped (`\\"`), so no string holds that text; and a tail holds no `}` before the
row's own. A new tail of another length (`verified` turning true, a moment on a whole second)
would move every later row: the list is then encoded again instead.

Kept because `bench.bench_latency` shows it worth more than twice the run-to-run spread of the
figure it moves: the p99 of the available list (10,000 rows) during back-to-back full syncs by
digest, over the idle p99, three runs each way, interleaved, on 2 cores:

| syncs sent to              | without (runs; mean, sd)      | with (runs; mean, sd)        |
|----------------------------|-------------------------------|------------------------------|
| the process that reads     | 3.81, 3.57, 3.38; 3.59, 0.22  | 2.66, 1.93, 2.05; 2.21, 0.39 |
| the other process          | 10.61, 8.06, 9.76; 9.48, 1.30 | 6.92, 4.70, 3.97; 5.20, 1.54 |

(Measured before a read during a bulk write began to check the log for other processes' writes.)
"""

from __future__ import annotations

from array import array
from operator import attrgetter, sub

import orjson

from peers.store.model import Entry
from peers.store.render import Moments

_TAIL = b'"verified":'


def offsets(body: bytes, rows: int) -> tuple[array[int], array[int]]:
    """Where each row's tail starts, and where each row ends, in list order."""
    starts, ends = array("I"), array("I")
    find, at = body.find, 0
    for _ in range(rows):
        start = find(_TAIL, at)
        at = find(b"}", start) + 1
        if start < 0 or at <= 0:
            raise ValueError("the encoded list holds fewer rows than it was built with")
        starts.append(start)
        ends.append(at)
    return starts, ends


def tails_of(entries: list[Entry]) -> list[bytes]:
    """The tail of each local entry's row, as `render` builds it (entries refreshed together share one)."""
    states = list(map(_STATE, entries))
    moment = Moments()
    made = {state: orjson.dumps({"verified": state[0], "lastSeen": moment(state[1])})[1:] for state in set(states)}
    return list(map(made.__getitem__, states))


_STATE = attrgetter("verified", "refreshed_at")


def rewrite(body: bytes, starts: array[int], ends: array[int], rows: list[int], new_tails: list[bytes]) -> bytes | None:
    """`body` with the tail of each of `rows` (ascending) replaced by the matching one of `new_tails`;
    None when a new tail's length differs from the old one's (every later offset would move).

    The body is copied once and each tail written over its old one in place (same lengths: no row moves).
    """
    row_starts, row_ends = list(map(starts.__getitem__, rows)), list(map(ends.__getitem__, rows))
    if list(map(len, new_tails)) != list(map(sub, row_ends, row_starts)):
        return None
    written = bytearray(body)
    for start, end, tail in zip(row_starts, row_ends, new_tails, strict=True):
        written[start:end] = tail
    return bytes(written)
