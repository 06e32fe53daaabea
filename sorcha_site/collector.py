"""The cyclic garbage collector, where a web process keeps it out of the way.

- `freeze_what_start_made()`: once a web process has loaded (Django, the mirror of the pool),
  what it holds lives as long as the process; frozen, a full collection no longer walks it.
  Without it every full collection walks some 135,000 objects (~60 ms), and reads that meet one
  wait that long.
- `paused()`: while a bulk write is parsed and applied. A request of 10,000 items allocates
  objects by the hundred thousand, none of them in cycles; each collection the interpreter starts
  meanwhile walks them all again.

Measured with `make bench`, three runs each way: see docs/performance.md ("Kept process-level
settings"). Each is kept only because it moves its figure by more than twice the run-to-run spread.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


def freeze_what_start_made() -> None:
    """Move every object alive now out of the collector's reach (`gc.freeze`)."""
    gc.freeze()


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Pause the cyclic collector for the block (reference counting still frees everything)."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
