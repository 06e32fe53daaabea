"""The pool as one process holds it in memory: what the store serves reads from.

A mirror changes in three ways only, each from what Redis holds, so every process that has
applied the same log entries holds the same entries with the same `lastSeen`:

- `load`: a scan of the whole pool (start-up, or after the log went back);
- `apply`: the state of keys a commit changed (the writer gets them in the script's reply, the
  other processes fetch them for the log entries they follow);
- `refresh`: local ids whose TTL a full sync started again, all until one moment.

An entry's `lastSeen` is its expiry less the TTL: the expiry is the absolute moment Redis holds
(every write counts its TTL from the writer's clock, and the log carries that moment).
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable

import orjson

from peers.store.model import Entry, FullSyncState, Tombstone, checked_stamp
from peers.store.redis_io import Keys, Page

logger = logging.getLogger(__name__)

# (key, value ("" when gone), expiry in ms since the epoch): one key's state in Redis.
KeyState = tuple[str, str, int]


class Mirror:
    """Local and remote entries, tombstones and the full-sync state, as Redis holds them."""

    def __init__(self, keys: Keys, ttl: float) -> None:
        self.keys = keys
        self.ttl = ttl
        self.local: dict[str, Entry] = {}
        self.remote: dict[str, dict[str, Entry]] = {}
        self.tombstones: dict[str, Tombstone] = {}
        self.peer_tombstones: dict[str, Tombstone] = {}
        self.full_sync = FullSyncState()
        # Bumped on every change the available list shows (an entry's fields, `lastSeen` or `verified`);
        # not by tombstones or the full-sync state. Keys the encoded list (`encoded.EncodedList`).
        self.version = 0
        # Bumped on every change but a refresh: while it stands, the list holds the same rows in the
        # same order, only their `verified` and `lastSeen` may have moved.
        self.rows_version = 0
        # Local ids whose row's `lastSeen` or `verified` moved since the list was last encoded
        # (`take_moved`): while `rows_version` stands, the only rows a new list must write anew.
        self._moved: set[str] = set()
        self._expiry_horizon = 0.0  # no entry expires before this moment
        self._local_prefix = keys.local("")

    # ------------------------------------------------------------------ changes
    def load(self, pages: Iterable[Page], previous: Mirror | None = None) -> None:
        """Hold exactly what the scan read. Entries are unverified at start-up (`previous` None);
        on a reload those equal to what this process held keep their verification."""
        self.local, self.remote, self.tombstones, self.peer_tombstones = {}, {}, {}, {}
        self._expiry_horizon, self._moved = 0.0, set()
        for keys, values, expiries in pages:
            self._load_page(keys, values, expiries)
        if previous is not None:
            for register_id, entry in self.local.items():
                old = previous.local.get(register_id)
                entry.verified = old.verified if old is not None and old.value == entry.value else True
            for peer_id, entries in self.remote.items():
                for register_id, entry in entries.items():
                    old = previous.remote.get(peer_id, {}).get(register_id)
                    entry.verified = old.verified if old is not None and old.value == entry.value else True
        self._expiry_horizon = self.next_expiry()
        self.version += 1
        self.rows_version += 1

    def _load_page(self, keys: list[str], values: list[str], expiries: list[int]) -> None:
        """One page of a scan: a local advertisement (nearly all of a pool) goes straight in as one
        compact entry; the rest goes the general way."""
        local, prefix = self.local, self._local_prefix
        cut = len(prefix)
        moments: dict[int, tuple[float, float]] = {}
        for key, raw, expiry_ms in zip(keys, values, expiries, strict=True):
            if not raw or expiry_ms < 0:
                continue
            expires_at, refreshed_at = self._moment(moments, expiry_ms)
            register_id = key[cut:]
            if not key.startswith(prefix) or ":" in register_id:
                self._set(key, raw, expires_at, verified=False)
                continue
            try:
                stamp = checked_stamp(raw)  # each value on its own: a corrupt one is skipped, not its page
            except ValueError as exc:
                logger.error("event=store_entry_unreadable prefix=%s key=%s error=%r", self.keys.prefix, key, exc)
                continue
            local[register_id] = Entry(register_id, None, stamp, None, raw, refreshed_at, expires_at, False)

    def apply(self, states: Iterable[KeyState], *, encoded_here: bool = False) -> None:
        """Take the state of changed keys: entries written or refreshed are verified (their source
        stated them since this process started). `encoded_here`: every value is one this process
        encoded itself (a commit's reply), so it is not parsed again; values fetched are checked.
        """
        local, prefix, ttl = self.local, self._local_prefix, self.ttl
        cut, soonest, rows_changed, refreshed = len(prefix), self._expiry_horizon, False, False
        # Entries written by one commit share one expiry, and through this its two floats (see `_moment`).
        moments: dict[int, tuple[float, float]] = {}
        for key, raw, expiry_ms in states:
            register_id = key[cut:]
            if not key.startswith(prefix) or ":" in register_id:  # (local entries inline: nearly all writes)
                rows_changed |= self._set(key, raw if expiry_ms >= 0 else "", expiry_ms / 1000, verified=True)
                if raw and expiry_ms >= 0:
                    soonest = min(soonest, expiry_ms / 1000)
                continue
            if not raw or expiry_ms < 0:
                rows_changed |= local.pop(register_id, None) is not None
                continue
            moment = moments.get(expiry_ms)
            if moment is None:
                moment = moments[expiry_ms] = (expiry_ms / 1000, expiry_ms / 1000 - ttl)
                soonest = min(soonest, moment[0])  # (the horizon: no expiry taken in is earlier)
            held = local.get(register_id)
            if held is not None and held.value == raw:  # the same advertisement, its TTL started again
                held.expires_at, held.refreshed_at = moment
                held.verified = refreshed = True
                self._moved.add(register_id)
                continue
            rows_changed = True
            try:
                # (a value this process encoded itself needs no check)
                stamp = int(raw[: raw.index("|")]) if encoded_here else checked_stamp(raw)
            except ValueError as exc:
                logger.error("event=store_entry_unreadable prefix=%s key=%s error=%r", self.keys.prefix, key, exc)
                continue
            local[register_id] = Entry(register_id, None, stamp, None, raw, moment[1], moment[0], True)
        self._expiry_horizon = soonest
        if rows_changed or refreshed:
            self.version += 1
        if rows_changed:
            self.rows_version += 1

    def _moment(self, moments: dict[int, tuple[float, float]], expiry_ms: int) -> tuple[float, float]:
        """An expiry in ms as (expires_at, refreshed_at). Entries written by one commit share one expiry:
        through `moments` they share its two floats too (~5 MB at 100,000)."""
        moment = moments.get(expiry_ms)
        if moment is None:
            moment = moments[expiry_ms] = (expiry_ms / 1000, expiry_ms / 1000 - self.ttl)
        return moment

    def refresh(self, register_ids: Iterable[str], until: float) -> None:
        """Local entries whose TTL a full sync started again, all until `until`."""
        local, refreshed_at, refreshed, moved = self.local, until - self.ttl, False, self._moved
        for register_id in register_ids:
            entry = local.get(register_id)
            if entry is not None:
                entry.expires_at, entry.refreshed_at, entry.verified = until, refreshed_at, True
                moved.add(register_id)
                refreshed = True
        if refreshed:
            self.version += 1

    def take_moved(self) -> set[str]:
        """The local ids whose row's `lastSeen` or `verified` moved since the last call (the encoded
        list's, the one caller); at most every local id."""
        moved, self._moved = self._moved, set()
        return moved

    def _set(self, key: str, raw: str, expires_at: float, verified: bool) -> bool:
        """Take one key's state; whether it changed an entry (a row of the list)."""
        try:
            return self._set_checked(key, raw, expires_at, verified)
        except (ValueError, KeyError, TypeError, IndexError, orjson.JSONDecodeError) as exc:
            logger.error("event=store_entry_unreadable prefix=%s key=%s error=%r", self.keys.prefix, key, exc)
            return False

    def _set_checked(self, key: str, raw: str, expires_at: float, verified: bool) -> bool:
        parsed = self.keys.parse(key)
        kind = parsed[0] if parsed else ""
        if kind == "l":
            register_id = parsed[1]
            if not raw:
                return self.local.pop(register_id, None) is not None
            self.local[register_id] = Entry(
                register_id, None, checked_stamp(raw), None, raw, expires_at - self.ttl, expires_at, verified
            )
            return True
        if kind == "r":
            peer_id, register_id = sys.intern(parsed[1]), parsed[2]
            if not raw:
                entries = self.remote.get(peer_id)
                if entries is None or entries.pop(register_id, None) is None:
                    return False
                if not entries:
                    del self.remote[peer_id]
                return True
            self.remote.setdefault(peer_id, {})[register_id] = Entry(
                register_id, peer_id, checked_stamp(raw), None, raw, expires_at - self.ttl, expires_at, verified
            )
            return True
        if kind in ("tomb", "ptomb"):
            tombs = self.tombstones if kind == "tomb" else self.peer_tombstones
            if not raw:
                tombs.pop(parsed[1], None)
            else:
                tombs[parsed[1]] = Tombstone.decode(raw, expires_at)
        elif kind == "meta" and raw:
            self.full_sync = FullSyncState.decode(raw)
        return False

    # ------------------------------------------------------------------ time
    def expire(self, now: float) -> bool:
        """Drop what is past its expiry (Redis drops it at the same moment); whether anything went."""
        if now < self._expiry_horizon:  # nothing can have expired yet (the hot path)
            return False
        dropped = False
        for register_id in [rid for rid, entry in self.local.items() if entry.expires_at <= now]:
            del self.local[register_id]
            dropped = True
        for peer_id in list(self.remote):
            entries = self.remote[peer_id]
            for register_id in [rid for rid, entry in entries.items() if entry.expires_at <= now]:
                del entries[register_id]
                dropped = True
            if not entries:
                del self.remote[peer_id]
        for tombs in (self.tombstones, self.peer_tombstones):
            for name in [name for name, tomb in tombs.items() if tomb.expires_at <= now]:
                del tombs[name]
        self._expiry_horizon = min(self.next_expiry(), now + self.ttl)
        if dropped:
            self.version += 1
            self.rows_version += 1
        return dropped

    def next_expiry(self) -> float:
        soonest = min((entry.expires_at for entry in self.local.values()), default=float("inf"))
        for entries in self.remote.values():
            soonest = min(soonest, min((entry.expires_at for entry in entries.values()), default=soonest))
        return soonest
