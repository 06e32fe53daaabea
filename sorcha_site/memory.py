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


# glibc's mallopt parameter for the size from which a block is mapped on its own (malloc.h).
_M_MMAP_THRESHOLD = -3
# Blocks of this size and more: Redis replies of megabytes, request bodies, the rendered list.
LARGE_BLOCK_BYTES = 256 * 1024


def keep_large_blocks_mapped() -> bool:
    """Give every large block its own mapping, returned to the system when freed; True when set.

    glibc maps a large block on its own, but once one is freed it raises that threshold (up to
    32 MiB) and serves later large blocks from the heap, where they stay when freed: a web process
    that has read its pool page by page (megabytes each) keeps ~10 MiB it no longer uses. A fixed
    threshold turns that adjustment off. Elsewhere (another C library) nothing changes.
    """
    try:
        libc = ctypes.CDLL(None)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES))
