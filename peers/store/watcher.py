"""The store's watcher: a thread per process that follows the change log between requests.

So a read usually finds the mirror up to date already, and when Redis comes back (or comes back
empty) the process recovers without waiting for a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager

import redis

from peers.store.commit import Committer
from peers.store.mirror import Mirror
from peers.store.redis_io import log_order

logger = logging.getLogger(__name__)


class Watcher:
    """Blocks on the log for up to `wait` seconds at a time; follows what other processes wrote."""

    def __init__(self, committer: Committer, mirror: Mirror, lock: AbstractContextManager[object], wait: float) -> None:
        self.committer, self.mirror, self.lock, self.wait = committer, mirror, lock, wait
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"store-watcher-{committer.io.keys.prefix}", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _await(self) -> bytes | None:
        """The first log entry after this process's position, waited for; None when none came."""
        committer = self.committer
        if committer.breaker.open:
            self._stop.wait(committer.breaker.cooldown)
            return None
        try:
            return committer.io.await_change(committer.position, int(self.wait * 1000))
        except redis.RedisError:
            self._stop.wait(self.wait)
            return None

    def _run(self) -> None:
        looked_at = 0.0  # when the watcher last followed the log and dropped what expired (time.monotonic)
        step: Callable[[], None] = self._step
        while not self._stop.is_set():
            came = self._await()
            if self._stop.is_set():
                return
            own = came is not None and log_order(came) <= log_order(self.committer.position)
            if own and time.monotonic() < looked_at + self.wait:
                # This process's own commit, applied as it answered: nothing to follow, and the lock
                # stays with the next write or read (expiries are still dropped once a wait).
                continue
            try:
                step()
                looked_at = time.monotonic()
            except Exception:
                logger.exception("event=store_watcher_failed prefix=%s", self.committer.io.keys.prefix)
                self._stop.wait(self.wait)

    def _step(self) -> None:
        committer = self.committer
        # The log read before the store is taken, so that readers do not wait on Redis behind the watcher;
        # not while this process commits (the entry that woke it may be its own, taken in as it answers).
        prefetch = None if committer.committing else committer.prefetch()
        with self.lock:
            if committer.breaker.open:
                committer.try_recover()
            elif not committer.take_prefetch(prefetch):
                committer.guarded(committer.follow)
            self.mirror.expire(time.time())
