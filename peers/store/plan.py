"""What a planner hands the commit path: plans, the clock they were made at, and their counting.

`decide` makes plans; `commit.Committer` carries them to Redis and counts what Redis did with
`tally`. Nothing here knows Redis.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from peers.store.model import BulkResult
from peers.store.redis_io import Ops

# (key, value ("" when gone), expiry in ms): a key's state, as `mirror.Mirror.apply` takes it.
KeyState = tuple[str, str, int]
GONE = -2  # the expiry of a key that is gone (as Redis's PEXPIRETIME says)


@dataclass(slots=True)
class Plan:
    """One script call: its operations (each labelled), and the mirror's state should all be taken."""

    ops: Ops = field(default_factory=Ops)
    expected: list[KeyState] = field(default_factory=list)
    refreshed: list[str] = field(default_factory=list)  # local ids a T refreshes
    refreshed_until: float = 0.0

    def __len__(self) -> int:
        return len(self.ops)


class Plans:
    """Plans of at most `batch` operations each (every one opened by `header`, a guard, when given)."""

    def __init__(self, batch: int, header: list[str] | None = None) -> None:
        self.batch = batch
        self.header = header
        self.done: list[Plan] = []
        self.current = self._open()

    def _open(self) -> Plan:
        plan = Plan()
        if self.header is not None:
            plan.ops.add(self.header)
        return plan

    def add(self, args: Sequence[str | int], labels: str = "", *expected: KeyState) -> None:
        if len(self.current) >= self.batch:
            self.done.append(self.current)
            self.current = self._open()
        self.current.ops.add(args, labels)
        self.current.expected.extend(expected)

    def take(self) -> list[Plan]:
        """Every plan made, in order (none when nothing was added)."""
        first_op = 0 if self.header is None else 1
        plans = [*self.done, self.current]
        return [plan for plan in plans if len(plan) > first_op]


@dataclass(frozen=True, slots=True)
class Clock:
    """The moment a plan is made: seconds for comparisons, ms for the TTLs it writes."""

    now: float
    ttl_ms: int

    @property
    def now_ms(self) -> int:
        return round(self.now * 1000)

    @property
    def until_ms(self) -> int:
        return self.now_ms + self.ttl_ms


def tally(labels: str, results: bytes | None, result: BulkResult) -> list[int]:
    """Count what a script call did: each planned label against its result digit (None: the plan was
    journaled, and counts as planned). Returns the positions of refreshes Redis found missing (and of a
    refused record)."""
    missing: list[int] = []
    for position, label in enumerate(labels):
        digit = None if results is None else results[position]
        if label in "aun":
            if digit == 48:  # "0": Redis holds something newer
                result.stale += 1
            elif digit == 50 or (digit is None and label == "n"):  # "2": equal, its TTL refreshed
                result.unchanged += 1
            elif label == "a":
                result.added += 1
            else:
                result.updated += 1
        elif label in "rx":
            if digit == 49 or (digit is None and label == "r"):
                result.removed += 1
        elif label in "tm" and digit == 48:  # a refresh of an id Redis lacks; a record outranked
            missing.append(position)
    return missing
