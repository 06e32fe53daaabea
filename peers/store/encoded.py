"""The available list as the bytes a read returns, kept per version of the mirror.

`render.aggregate` says what the list holds; this module keeps it encoded, so that a read costs
a lookup while the mirror is unchanged, and the list is encoded once per change. The order of
the rows is kept too, per `Mirror.rows_version`: after a change that only moved `lastSeen` or
`verified` (a full sync's refreshes), the rows are built again but not sorted again.
"""

from __future__ import annotations

from array import array
from typing import TYPE_CHECKING

import orjson

from peers.store.render import aggregate_in_order

if TYPE_CHECKING:
    from peers.store.mirror import Mirror


class EncodedList:
    """The encoded list for one version of the mirror."""

    def __init__(self) -> None:
        self._version = -1
        self._body = b"[]"
        self._rows_version = -1
        self._order: array[int] | None = None  # the rows' order for `_rows_version` (render.order_of)

    def body_for(self, version: int) -> bytes | None:
        """The body if it was encoded for `version` of the mirror, else None."""
        return self._body if version == self._version else None

    def body(self, mirror: Mirror) -> bytes:
        """The body for the mirror as it is: the kept one, or one encoded now."""
        if mirror.version != self._version:
            self._body = b""  # (the old body goes before the new one is made: never two at once)
            order = self._order if mirror.rows_version == self._rows_version else None
            rows, self._order = aggregate_in_order(mirror.local, mirror.remote, order)
            self._rows_version = mirror.rows_version
            self._body = orjson.dumps(rows)
            self._version = mirror.version
        return self._body
