"""The available-registers list: aggregation (pure) and its pre-encoded rendering.

For a register this node hosts, every field shown is this node's own; peers only raise the
counts. For a remote-only register each field is the value held by the most peers (ties: the
most recently seen), so one liar cannot override honest peers (ARCHITECTURE §4).
"""

from __future__ import annotations

import operator
import re
import time
from array import array
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import accumulate, chain, islice
from typing import Any

import orjson
from django.core.cache.backends.base import BaseCache

from peers.store.model import Entry, format_micros, value_body

_VOTED_FIELDS = ("name", "description", "latestVersion", "latestDocketVersion")


class _Moments:
    """lastSeen texts: a bulk refresh gives thousands of entries one moment, and a restart gives
    each its own moment within a few seconds (many sharing a millisecond): each moment is formatted
    once, and each second once, its microseconds appended."""

    def __init__(self) -> None:
        self._seconds: dict[int, str | None] = {}
        self._texts: dict[float, str | None] = {}

    def __call__(self, seconds: float) -> str | None:
        texts = self._texts
        if seconds in texts:
            return texts[seconds]
        text = texts[seconds] = self._format(seconds)
        return text

    def _format(self, seconds: float) -> str | None:
        try:
            whole, micros = divmod(int(seconds * 1_000_000), 1_000_000)
        except (OverflowError, ValueError):  # infinite, or not a number
            return None
        prefix = self._seconds.get(whole, "")
        if prefix == "":
            # The second itself, as format_micros writes it (None when no datetime can hold it).
            text = format_micros(whole * 1_000_000)
            prefix = self._seconds[whole] = None if text is None else text[:-1]
        if prefix is None:
            return None
        return f"{prefix}.{micros:06d}Z" if micros else f"{prefix}Z"


def decoded(entries: list[Entry]) -> list[dict[str, Any]]:
    """The fields of many entries, decoded as one JSON array: one call instead of one per entry."""
    if not entries:
        return []
    return list(orjson.loads("[" + ",".join([value_body(entry.value) for entry in entries]) + "]"))


def majority(fields: Sequence[Mapping[str, Any]], seen_at: list[float], name: str) -> Any:
    """The value most peers hold; among equally held values, the one seen most recently."""
    if len(fields) == 1:
        return fields[0][name]
    votes: Counter[Any] = Counter()
    seen: dict[Any, float] = {}
    for held, refreshed_at in zip(fields, seen_at, strict=True):
        value = held[name]
        votes[value] += 1
        seen[value] = max(seen.get(value, 0.0), refreshed_at)
    return max(votes, key=lambda value: (votes[value], seen[value]))


def local_row(
    register_id: str,
    local: Entry,
    fields: Mapping[str, Any],
    remote: list[Entry],
    moment: Callable[[float], str | None],
) -> dict:
    return {
        "registerId": register_id,
        "name": fields["name"],
        "description": fields["description"],
        "isPublic": True,
        "isLocal": True,
        "peerCount": len(remote),
        "fullReplicaPeerCount": sum(1 for e in remote if e.fields["isFullReplica"]) if remote else 0,
        "latestVersion": fields["latestVersion"],
        "latestDocketVersion": fields["latestDocketVersion"],
        "verified": local.verified,
        "lastSeen": moment(local.refreshed_at),
    }


def remote_row(register_id: str, remote: list[Entry], moment: Callable[[float], str | None]) -> dict:
    fields = decoded(remote)
    seen_at = [e.refreshed_at for e in remote]
    voted = {name: majority(fields, seen_at, name) for name in _VOTED_FIELDS}
    return {
        "registerId": register_id,
        "name": voted["name"],
        "description": voted["description"],
        "isPublic": True,
        "isLocal": False,
        "peerCount": len(remote),
        "fullReplicaPeerCount": sum(1 for held in fields if held["isFullReplica"]),
        "latestVersion": voted["latestVersion"],
        "latestDocketVersion": voted["latestDocketVersion"],
        "verified": any(e.verified for e in remote),
        "lastSeen": moment(max(seen_at)),
    }


# Rows are built, decoded and encoded a few thousand at a time (and a refresh patch joins as many at a
# time): the fields of a whole pool at once would be freed only after its rows were built, and each web
# process would keep that peak as fragmentation.
_CHUNK = 4_096


def _unsorted_rows(
    local: Mapping[str, Entry], remote: Mapping[str, Mapping[str, Entry]], moment: Callable[[float], str | None]
) -> Iterator[dict[str, Any]]:
    """Every row of the list, the local ones first, each in the order the mirror holds its entries.

    That order is the order their memory was allocated in (at start-up, the order the scan read
    them): building rows in it rather than in the list's order touches memory in sequence. In name
    order each row costs a few cache misses: 100,000 rows took ~0.17 s to build instead of ~0.06 s.
    """
    remote_by_register: dict[str, list[Entry]] = {}
    for peer_entries in remote.values():
        for register_id, entry in peer_entries.items():
            remote_by_register.setdefault(register_id, []).append(entry)
    ids, entries = list(local), list(local.values())
    for start in range(0, len(entries), _CHUNK):
        part = entries[start : start + _CHUNK]
        for register_id, entry, fields in zip(ids[start : start + _CHUNK], part, decoded(part), strict=True):
            peers = remote_by_register.pop(register_id, None) if remote_by_register else None
            if peers:
                yield local_row(register_id, entry, fields, peers, moment)
                continue
            # A local row without peers (most of a pool, and all of it on a node alone): local_row inlined.
            yield {
                "registerId": register_id,
                "name": fields["name"],
                "description": fields["description"],
                "isPublic": True,
                "isLocal": True,
                "peerCount": 0,
                "fullReplicaPeerCount": 0,
                "latestVersion": fields["latestVersion"],
                "latestDocketVersion": fields["latestDocketVersion"],
                "verified": entry.verified,
                "lastSeen": moment(entry.refreshed_at),
            }
    for register_id, peers in remote_by_register.items():
        yield remote_row(register_id, peers, moment)


def _sort_key(row: Mapping[str, Any]) -> tuple[str, str]:
    """The list's order: by name (case folded), then by register id (unique: no two rows tie)."""
    return row["name"].lower(), row["registerId"]


def aggregate(local: Mapping[str, Entry], remote: Mapping[str, Mapping[str, Entry]]) -> list[dict[str, Any]]:
    """Local public ads and remote ads grouped by register, sorted by name then id."""
    return sorted(_unsorted_rows(local, remote, _Moments()), key=_sort_key)


# Every row's first member is its register id. In an encoded run of flat rows, this text occurs only
# where one row ends and the next begins (inside a string every quote is escaped). A row is not flat
# only when a stored value holds an object or a list in a field (a corrupt value: the store writes
# scalars); its chunk then cuts into more pieces than rows, and is encoded row by row instead.
_ROW_START = b'{"registerId":'
_BETWEEN_ROWS = b"}," + _ROW_START


def encode_list(
    local: Mapping[str, Entry], remote: Mapping[str, Mapping[str, Entry]]
) -> tuple[bytes, list[str | None]]:
    """The list encoded as one JSON array (the bytes orjson gives for `aggregate`'s rows), and the
    register id of each row that is local (None for the others), in row order.

    The rows are built and encoded a chunk at a time in the mirror's order; each chunk's encoding
    is cut into its rows (in C), and the rows are joined in the list's order. (One `orjson.dumps`
    per row took ~1.8 µs each in a starting process: a buffer allocated and shrunk per row.) At
    100,000 rows a starting process renders in ~0.34 s, against ~0.46 s building the rows in the
    list's order. The interpreter's free lists keep some of the rows freed here, scattered over
    the heap: a web process empties them once it has loaded (`sorcha_site.memory.drop_free_lists`).
    """
    keys: list[tuple[str, str]] = []
    pieces: list[bytes] = []  # each row without its first and last few bytes (`_ROW_START`, "}")
    rows = _unsorted_rows(local, remote, _Moments())
    while chunk := list(islice(rows, _CHUNK)):
        keys.extend([(row["name"].lower(), row["registerId"]) for row in chunk])
        cut = orjson.dumps(chunk)[1 + len(_ROW_START) : -2].split(_BETWEEN_ROWS)
        if len(cut) != len(chunk):  # a row that is not flat (above): a cut can only add pieces
            cut = [orjson.dumps(row)[len(_ROW_START) : -1] for row in chunk]
        pieces.extend(cut)
    order = sorted(range(len(keys)), key=keys.__getitem__)
    local_count = len(local)
    local_ids = [keys[index][1] if index < local_count else None for index in order]
    del keys
    if not pieces:
        return b"[]", local_ids
    ordered = list(map(pieces.__getitem__, order))
    del pieces, order
    ordered[0] = b"[" + _ROW_START + ordered[0]
    ordered[-1] += b"}]"  # (the same row as the first when there is one)
    return _BETWEEN_ROWS.join(ordered), local_ids


class Rendering:
    """The encoded list, valid for one mirror version until its first entry is due to expire.

    The encoded body is kept through Django's cache API (`cache`, a process-local alias: the
    rendering belongs to this process's mirror) under one key, with the time until that first
    expiry as its TTL; without a cache (a store built outside Django) it is kept on the object.
    Only the body is kept: the rows it was encoded from are dropped at once (each web process
    would otherwise hold the pool twice more). A refresh patches the body itself.
    """

    def __init__(self, cache: BaseCache | None = None, key: str = "available") -> None:
        self._cache = cache
        self._key = key
        self._held: tuple[int, bytes] | None = None  # (version, body) when there is no cache
        self._held_until = 0.0
        self.served = False  # rendered for a reader at least once: someone reads the list
        self.read = False  # the body kept now was handed to a reader (the store sets it)
        self._version = -1
        # The register ids of the local rows, in row order; which rows they are (None: every row is
        # local); how many rows in all; and once a refresh needed them, where each local row's
        # `verified` and `lastSeen` lie in the body.
        self._row_ids: list[str] = []
        self._positions: array[int] | None = None
        self._rows = 0
        self._tails: array[int] | None = None

    @property
    def rows(self) -> int:
        """How many rows the list had when it was last rendered."""
        return self._rows

    def _keep(self, version: int, body: bytes, valid_until: float) -> None:
        self._version = version
        self.read = False
        if self._cache is None:
            self._held, self._held_until = (version, body), valid_until
            return
        ttl = valid_until - time.time()
        if ttl <= 0:
            self._cache.delete(self._key)
            return
        self._cache.set(self._key, (version, body), None if ttl == float("inf") else ttl)

    def _kept(self) -> tuple[int, bytes] | None:
        if self._cache is None:
            return self._held if self._held is not None and time.time() < self._held_until else None
        kept: tuple[int, bytes] | None = self._cache.get(self._key)
        return kept

    def forget(self) -> None:
        """Drop the kept body (the store is closing)."""
        self._held = None
        if self._cache is not None:
            self._cache.delete(self._key)

    def fresh(self, version: int | None = None) -> bytes | None:
        """The body if still valid (for `version` when given), else None."""
        kept = self._kept()
        if kept is None or (version is not None and kept[0] != version):
            return None
        return kept[1]

    def render(
        self,
        version: int,
        valid_until: float,
        local: Mapping[str, Entry],
        remote: Mapping[str, Mapping[str, Entry]],
        *,
        for_reader: bool = True,
    ) -> bytes:
        """Encode the list for this mirror version and keep it; `for_reader` False renders ahead of
        any reader (at start-up), which does not make later writes render for readers."""
        body, local_ids = encode_list(local, remote)
        # Which rows are local (their register ids, shared with the mirror's keys): all a refresh needs.
        self._rows = len(local_ids)
        self._row_ids = [register_id for register_id in local_ids if register_id is not None]
        self._positions = (
            None
            if len(self._row_ids) == self._rows
            else array("q", [row for row, register_id in enumerate(local_ids) if register_id is not None])
        )
        self._tails = None
        self._keep(version, body, valid_until)
        self.served = self.served or for_reader
        return body

    def patch_refreshed(self, version: int, valid_until: float, local: Mapping[str, Entry]) -> bool:
        """A full sync that only refreshed changes `lastSeen` and `verified` of local rows.

        Patch them in the encoded body (every row ends with those two) and keep it under the same
        version; False when a row needs aggregating again (the next read renders it all).
        """
        body = self.fresh(version)
        if not self.served or self._version != version or body is None:
            return False
        if len(self._row_ids) != len(local):
            return False
        tails = self._tails if self._tails is not None else self._local_tails(body)
        if tails is None:
            return False
        try:  # every local row's entry (as many as rows: the same registers), found in C
            entries = list(map(local.__getitem__, self._row_ids))
        except KeyError:
            return False
        verified, refreshed_at = list(map(_VERIFIED, entries)), list(map(_REFRESHED_AT, entries))
        moment = _Moments()
        if entries and verified.count(verified[0]) == len(verified) == refreshed_at.count(refreshed_at[0]):
            # One full sync refreshed every row alike (the usual case): one tail for all of them.
            new = [_tail(verified[0], moment(refreshed_at[0]))] * len(entries)
        else:  # the new tail of each row, each distinct one made once
            states = list(zip(verified, refreshed_at, strict=True))
            made = {state: _tail(state[0], moment(state[1])) for state in set(states)}
            new = list(map(made.__getitem__, states))
        patched, self._tails = _written_over(body, tails, new)
        self._keep(version, patched, valid_until)
        return True

    def _local_tails(self, body: bytes) -> array[int] | None:
        """Where the local rows' tails lie in `body` (None when the body does not have one per row)."""
        found = _tails(body)
        if len(found) != 2 * self._rows:
            return None
        if self._positions is None:
            return found
        return array("q", chain.from_iterable((found[2 * row], found[2 * row + 1]) for row in self._positions))


# Each entry's parts of its row's tail.
_VERIFIED, _REFRESHED_AT = operator.attrgetter("verified"), operator.attrgetter("refreshed_at")


def _written_over(body: bytes, tails: array[int], new: list[bytes]) -> tuple[bytes, array[int]]:
    """`body` with each local row's tail (at `tails`) replaced by `new`, and where each tail now lies.

    The stretches between the tails and the new tails are joined in C, a chunk of rows at a time (a
    view of each stretch, not a copy). Every refresh after the first writes tails of the same length:
    nothing moves. When `verified` turned, or a `lastSeen` has another length, the rows after it move.
    """
    view = memoryview(body)
    parts: list[bytes | memoryview] = []
    done = 0
    for first in range(0, len(new), _CHUNK):
        starts, ends = tails[2 * first : 2 * (first + _CHUNK) : 2], tails[2 * first + 1 : 2 * (first + _CHUNK) : 2]
        between = map(view.__getitem__, map(slice, chain((done,), ends[:-1]), starts))
        parts.append(b"".join(chain.from_iterable(zip(between, new[first : first + _CHUNK], strict=True))))
        done = ends[-1]
    parts.append(view[done:])
    lengths = list(map(len, new))
    old_lengths = list(map(operator.sub, tails[1::2], tails[0::2]))
    if lengths == old_lengths:
        return b"".join(parts), tails
    # Each tail moves by what the tails before it grew or shrank.
    shifts = accumulate(map(operator.sub, lengths, old_lengths), initial=0)
    moved_starts = list(map(operator.add, tails[0::2], shifts))  # (the last shift, after every row, unused)
    moved_ends = list(map(operator.add, moved_starts, lengths))
    return b"".join(parts), array("q", chain.from_iterable(zip(moved_starts, moved_ends, strict=True)))


# Every row ends with these two members, in this order (`local_row`, `remote_row`); the key with
# its quotes cannot occur inside a JSON string, where every quote is escaped.
_TAIL = re.compile(rb',"verified":(?:true|false),"lastSeen":(?:null|"[^"]*")(?=})')


def _tails(body: bytes) -> array[int]:
    """Start and end of each row's tail in an encoded list (the rendering keeps those of its local rows)."""
    found = array("q")
    for match in _TAIL.finditer(body):
        found.append(match.start())
        found.append(match.end())
    return found


def _tail(verified: bool, last_seen: str | None) -> bytes:
    return b',"verified":' + (b"true" if verified else b"false") + b',"lastSeen":' + orjson.dumps(last_seen)
