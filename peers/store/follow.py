"""Following the change log: whether this process can apply what other processes wrote.

Every commit appends one entry to the log (a Redis stream), and each entry names the entry
before it. A process remembers the last entry it applied (its position). To catch up it reads
the entries after its position; what it can do with them is decided here, from ids alone:

| what the log shows                                                  | verdict   |
|---------------------------------------------------------------------|-----------|
| nothing after the position, which is the log's head                  | `CURRENT` |
| entries whose first names the position as the one before it          | `APPLY`   |
| the log's oldest entry is newer than the position and had one before | `RELOAD`  |
| anything else: the position is gone from a log that did not move on  | `RECOVER` |

`RELOAD`: the log was trimmed while this process lagged behind it (Redis is ahead of the
process): the mirror is read again. `RECOVER`: Redis lost what this process had seen (it
restarted empty, or a replica that lagged was promoted): this process writes back what it
holds, every write conditional, then reads the pool again.
"""

from __future__ import annotations

from enum import Enum

from peers.store.redis_io import LogEntry, log_order

ORIGIN = b"0-0"  # the position of a process that has seen no entry (and the entry before the first)


class Verdict(Enum):
    CURRENT = "current"
    APPLY = "apply"
    RELOAD = "reload"
    RECOVER = "recover"


def verdict(position: bytes, entries: list[LogEntry], first: LogEntry | None, head: bytes) -> Verdict:
    """What a process at `position` does with the `entries` after it, given the log's first entry and head."""
    if entries and entries[0].previous == position:
        return Verdict.APPLY
    if not entries and head == position:
        return Verdict.CURRENT
    if first is not None and first.previous != ORIGIN and log_order(first.id) > log_order(position):
        return Verdict.RELOAD
    return Verdict.RECOVER
