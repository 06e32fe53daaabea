"""Memory control for the hot paths (bulk sync, start-up load): the garbage collector, the C allocator."""

from __future__ import annotations

import contextlib
import ctypes
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


# glibc's mallopt parameters (malloc.h): the size from which a block is mapped on its own, and how
# much free memory at the top of the heap is kept rather than returned to the system.
_M_MMAP_THRESHOLD = -3
_M_TRIM_THRESHOLD = -1
# While starting: blocks of this size and more (the pool's pages of megabytes) are mapped on their own.
LARGE_BLOCK_BYTES = 256 * 1024
# While serving: blocks under this size (a 10,000-register list, a bulk body) come from the heap ...
SERVING_MAPPED_BYTES = 4 * 1024 * 1024
# ... which keeps at most this much free at its top.
SERVING_KEPT_FREE_BYTES = 8 * 1024 * 1024


def _mallopt(*settings: tuple[int, int]) -> bool:
    """Set glibc's malloc parameters; True when every one was taken. Elsewhere (another C library)
    nothing changes."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return all([bool(mallopt(parameter, value)) for parameter, value in settings])


def keep_large_blocks_mapped() -> bool:
    """While a web process starts: give every large block its own mapping, returned to the system
    when freed; True when set.

    glibc maps a large block on its own, but once one is freed it raises that threshold (up to
    32 MiB) and serves later large blocks from the heap, where they stay when freed: a web process
    that has read its pool page by page (megabytes each) keeps ~10 MiB it no longer uses. A fixed
    threshold turns that adjustment off.
    """
    return _mallopt((_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES))


def reuse_mid_size_blocks() -> bool:
    """Once a web process serves: blocks of a few megabytes come from the heap again, and are reused
    there; True when set.

    Requests allocate and free them all the time (a refresh patch makes a new 2.6 MB list at 10,000
    registers, a bulk request reads a body as large). Each one mapped on its own is faulted in
    afresh, page by page: measured, 2.7 ms more for another process's refresh and 3.8 ms more for
    a digest sync of 6,000. Blocks of 4 MiB and more stay mapped; at most 8 MiB of free heap top is
    kept (the start-up pages are gone by then).
    """
    return _mallopt((_M_MMAP_THRESHOLD, SERVING_MAPPED_BYTES), (_M_TRIM_THRESHOLD, SERVING_KEPT_FREE_BYTES))


def drop_free_lists() -> None:
    """Empty the interpreter's free lists: once a web process has loaded (after `gc.freeze()`), and
    after each render of a large list.

    CPython keeps the last objects freed of a few types (up to 80 dicts, 2,000 tuples of each
    size, ...) for reuse. After the start-up rendering, those are rows of it scattered over the
    heap, and each one keeps its whole 1 MiB arena of small-object memory from going back to the
    system: measured, ~34 MiB a process at 100,000 registers. Only a full collection empties them;
    it walks only what is not frozen (well under a millisecond once a web process has loaded, ~3 ms
    while it serves; ~0.1 s in a process that froze nothing and holds 100,000 entries).
    """
    gc.collect()
