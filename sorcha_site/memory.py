"""Garbage-collector control for the hot paths (bulk sync, start-up load)."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Bulk work allocates objects by the hundred thousand; a full collection in the middle of it
    walks the whole heap again and again for nothing (these objects form no cycles)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
