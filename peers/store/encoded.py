"""The available list as the bytes a read returns, kept per version of the mirror.

`render.aggregate` says what the list holds; this module keeps it encoded, so that a read costs
a lookup while the mirror is unchanged, and the list is encoded once per change. After a change
that only moved the `lastSeen` or `verified` of local rows (a full sync's refreshes:
`Mirror.rows_version` unchanged), those rows' tails are written anew in the kept bytes (`tails`).
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import orjson

from peers.store import tails
from peers.store.render import aggregate

if TYPE_CHECKING:
    from peers.store.mirror import Mirror


class EncodedList:
    """The encoded list for one version of the mirror."""

    def __init__(self) -> None:
        self._version = -1
        self._body = b"[]"
        self._rows_version = -1
        self._ids: list[str] = []  # the rows' register ids, in the list's order
        # Looked for at the first rewrite of tails after an encoding: where each row's tail starts and
        # where the row ends (`tails.offsets`), and each register's row.
        self._tails: tuple[array[int], array[int]] | None = None
        self._rows: dict[str, int] | None = None

    def body_for(self, version: int) -> bytes | None:
        """The body if it was encoded for `version` of the mirror, else None."""
        return self._body if version == self._version else None

    def body(self, mirror: Mirror) -> bytes:
        """The body for the mirror as it is: the kept one, or one encoded now."""
        if mirror.version == self._version:
            return self._body
        moved = mirror.take_moved()
        if mirror.rows_version == self._rows_version:
            rewritten = self._with_tails_moved(mirror, moved)
            if rewritten is not None:
                self._body, self._version = rewritten, mirror.version
                return rewritten
        self._body = b""  # (the old body goes before the new one is made: never two at once)
        rows = aggregate(mirror.local, mirror.remote)
        self._ids, self._tails, self._rows = [row["registerId"] for row in rows], None, None
        self._body = orjson.dumps(rows)
        self._version, self._rows_version = mirror.version, mirror.rows_version
        return self._body

    def _with_tails_moved(self, mirror: Mirror, moved: set[str]) -> bytes | None:
        """The kept body with the tails of the `moved` local rows written anew; None when it cannot be."""
        if self._tails is None or self._rows is None:
            try:
                self._tails = tails.offsets(self._body, len(self._ids))
            except ValueError:
                return None
            self._rows = {register_id: row for row, register_id in enumerate(self._ids)}
        try:
            rows = sorted(map(self._rows.__getitem__, moved))
            entries = list(map(mirror.local.__getitem__, map(self._ids.__getitem__, rows)))
        except KeyError:  # (a row the kept list does not hold: the rows moved after all)
            return None
        return tails.rewrite(self._body, *self._tails, rows, tails.tails_of(entries))
