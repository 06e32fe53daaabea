"""The allocator setting a web process keeps: every large block mapped on its own.

glibc maps a block of 128 KiB or more on its own, but once such a block is freed it raises that
threshold (up to 32 MiB) and serves later large blocks from the heap, where they stay when freed.
A web process reads its pool in pages of megabytes and encodes lists of tens of megabytes: with
the adjusting threshold, those end up in the heap and its resident size keeps what they freed.
A fixed threshold turns the adjustment off. It is set once, before the process reads its pool.

Measured with `bench.bench_memory` (RSS of a web process above an idle one, over Redis's
`used_memory`, 100,000 local advertisements; the tracker issue's bound 2.5), three runs each way
on one machine in one sitting:

| threshold | RSS above idle / used_memory, three runs | mean | standard deviation | range |
|---|---|---|---|---|
| glibc's own (adjusting) | 2.845, 2.979, 2.893 | 2.906 | 0.068 | 0.134 |
| fixed (this module) | 2.519, 2.492, 2.516 | 2.509 | 0.015 | 0.027 |

The gain (0.397) is more than twice the larger standard deviation (0.136) and than the larger
range (0.268).
"""

from __future__ import annotations

import ctypes

# glibc's mallopt parameter (malloc.h): the size from which a block is mapped on its own.
_M_MMAP_THRESHOLD = -3
LARGE_BLOCK_BYTES = 256 * 1024


def keep_large_blocks_mapped() -> bool:
    """Map every block of `LARGE_BLOCK_BYTES` or more on its own, returned to the system when freed;
    True when set (False with a C library other than glibc: nothing changes)."""
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):
        return False
    return bool(mallopt(_M_MMAP_THRESHOLD, LARGE_BLOCK_BYTES))
