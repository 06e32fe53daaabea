"""The available-registers list: aggregation (pure) and its pre-encoded rendering.

For a register this node hosts, every field shown is this node's own; peers only raise the
counts. For a remote-only register each field is the value held by the most peers (ties: the
most recently seen), so one liar cannot override honest peers (ARCHITECTURE §4).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from django.core.cache.backends.base import BaseCache

from peers.store.model import Entry, format_seconds

_VOTED_FIELDS = ("name", "description", "latestVersion", "latestDocketVersion")


class _Moments:
    """A bulk refresh gives thousands of entries one moment: format each moment once."""

    def __init__(self) -> None:
        self._texts: dict[float, str | None] = {}

    def __call__(self, seconds: float) -> str | None:
        text = self._texts.get(seconds)
        if text is None:
            text = self._texts[seconds] = format_seconds(seconds)
        return text


def majority(remote: list[Entry], name: str) -> Any:
    """The value most peers hold; among equally held values, the one seen most recently."""
    if len(remote) == 1:
        return remote[0].fields[name]
    votes: Counter[Any] = Counter()
    seen: dict[Any, float] = {}
    for entry in remote:
        value = entry.fields[name]
        votes[value] += 1
        seen[value] = max(seen.get(value, 0.0), entry.refreshed_at)
    return max(votes, key=lambda value: (votes[value], seen[value]))


def local_row(register_id: str, local: Entry, remote: list[Entry], moment: Callable[[float], str | None]) -> dict:
    fields = local.fields
    return {
        "registerId": register_id,
        "name": fields["name"],
        "description": fields["description"],
        "isPublic": True,
        "isLocal": True,
        "peerCount": len(remote),
        "fullReplicaPeerCount": sum(1 for e in remote if e.fields["isFullReplica"]),
        "latestVersion": fields["latestVersion"],
        "latestDocketVersion": fields["latestDocketVersion"],
        "verified": local.verified,
        "lastSeen": moment(local.refreshed_at),
    }


def remote_row(register_id: str, remote: list[Entry], moment: Callable[[float], str | None]) -> dict:
    voted = {name: majority(remote, name) for name in _VOTED_FIELDS}
    return {
        "registerId": register_id,
        "name": voted["name"],
        "description": voted["description"],
        "isPublic": True,
        "isLocal": False,
        "peerCount": len(remote),
        "fullReplicaPeerCount": sum(1 for e in remote if e.fields["isFullReplica"]),
        "latestVersion": voted["latestVersion"],
        "latestDocketVersion": voted["latestDocketVersion"],
        "verified": any(e.verified for e in remote),
        "lastSeen": moment(max(e.refreshed_at for e in remote)),
    }


def aggregate(local: Mapping[str, Entry], remote: Mapping[str, Mapping[str, Entry]]) -> list[dict[str, Any]]:
    """Local public ads and remote ads grouped by register, sorted by name then id."""
    remote_by_register: dict[str, list[Entry]] = {}
    for peer_entries in remote.values():
        for register_id, entry in peer_entries.items():
            remote_by_register.setdefault(register_id, []).append(entry)
    moment = _Moments()
    rows = [
        local_row(register_id, entry, remote_by_register.pop(register_id, []), moment)
        for register_id, entry in local.items()
    ]
    rows.extend(remote_row(register_id, entries, moment) for register_id, entries in remote_by_register.items())
    rows.sort(key=lambda row: (row["name"].lower(), row["registerId"]))
    return rows


class Rendering:
    """The encoded list, valid for one mirror version until its first entry is due to expire.

    The encoded body is kept through Django's cache API (`cache`, a process-local alias: the
    rendering belongs to this process's mirror) under one key, with the time until that first
    expiry as its TTL; without a cache (a store built outside Django) it is kept on the object.
    The rows behind it stay here, so a refresh can patch them in place.
    """

    def __init__(self, cache: BaseCache | None = None, key: str = "available") -> None:
        self._cache = cache
        self._key = key
        self._held: tuple[int, bytes] | None = None  # (version, body) when there is no cache
        self._held_until = 0.0
        self.served = False  # rendered at least once: someone reads the list
        self._version = -1
        self._rows: list[dict[str, Any]] = []
        self._index: dict[str, dict[str, Any]] = {}

    def _keep(self, version: int, body: bytes, valid_until: float) -> None:
        self.served = True
        self._version = version
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
    ) -> bytes:
        rows = aggregate(local, remote)
        self._rows, self._index = rows, {row["registerId"]: row for row in rows}
        body = orjson.dumps(rows)
        self._keep(version, body, valid_until)
        return body

    def patch_refreshed(self, version: int, valid_until: float, local: Mapping[str, Entry]) -> bool:
        """A full sync that only refreshed changes `lastSeen` and `verified` of local rows.

        Patch them in place and re-encode; False when a row needs aggregating again.
        """
        if not self.served or self._version != version or self.fresh(version) is None:
            return False
        moment = _Moments()
        for register_id, entry in local.items():
            row = self._index.get(register_id)
            if row is None or not row["isLocal"]:
                return False
            row["lastSeen"] = moment(entry.refreshed_at)
            row["verified"] = entry.verified
        self._keep(version, orjson.dumps(self._rows), valid_until)
        return True
