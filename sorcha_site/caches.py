"""A process-local Django cache backend that keeps references instead of pickles.

Django's LocMemCache pickles every value on `set` and unpickles it on every `get`: for the
store's pre-encoded available list (tens of megabytes of bytes) that is a second copy kept in
the cache and a third made on every read. This backend keeps the object itself, so it is for
immutable values only (bytes, and tuples of immutable values): a caller that mutated what it
got would change what the next caller gets.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

from django.core.cache.backends.base import DEFAULT_TIMEOUT, BaseCache

# Django builds a backend instance per thread (`caches` is thread-local): instances with one
# LOCATION share one store of values and one lock, as LocMemCache's do.
_values_by_location: dict[str, OrderedDict[str, tuple[Any, float | None]]] = {}
_locks_by_location: dict[str, threading.Lock] = {}
_setup_lock = threading.Lock()


class ReferenceCache(BaseCache):
    """Thread-safe, per-process, least recently used first out; values are not copied."""

    def __init__(self, location: str, params: dict[str, Any]) -> None:
        super().__init__(params)
        with _setup_lock:
            # key -> (value, expires at), least recently used first
            self._values = _values_by_location.setdefault(location, OrderedDict())
            self._lock = _locks_by_location.setdefault(location, threading.Lock())

    def _live(self, key: str) -> tuple[Any, float | None] | None:
        held = self._values.get(key)
        if held is None:
            return None
        if held[1] is not None and held[1] <= time.time():
            del self._values[key]
            return None
        return held

    def _store(self, key: str, value: Any, timeout: Any) -> None:
        self._values[key] = (value, self.get_backend_timeout(timeout))
        self._values.move_to_end(key)
        while len(self._values) > self._max_entries:
            self._values.popitem(last=False)

    def add(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            if self._live(key) is not None:
                return False
            self._store(key, value, timeout)
            return True

    def get(self, key: Any, default: Any = None, version: int | None = None) -> Any:
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            held = self._live(key)
            if held is None:
                return default
            self._values.move_to_end(key)
            return held[0]

    def set(self, key: Any, value: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> None:
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            self._store(key, value, timeout)

    def touch(self, key: Any, timeout: Any = DEFAULT_TIMEOUT, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            held = self._live(key)
            if held is None:
                return False
            self._values[key] = (held[0], self.get_backend_timeout(timeout))
            return True

    def delete(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            return self._values.pop(key, None) is not None

    def has_key(self, key: Any, version: int | None = None) -> bool:
        key = self.make_and_validate_key(key, version=version)
        with self._lock:
            return self._live(key) is not None

    def clear(self) -> None:
        with self._lock:
            self._values.clear()
