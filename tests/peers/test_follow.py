"""What a process does with the change log it reads (peers/store/follow.py), one case each."""

from __future__ import annotations

from peers.store.follow import ORIGIN, Verdict, verdict
from peers.store.redis_io import LogEntry


def entry(entry_id: str, previous: str) -> LogEntry:
    return LogEntry(entry_id.encode(), {b"p": previous.encode(), b"k": b"key"})


def test_nothing_after_the_position_at_the_head_is_current() -> None:
    assert verdict(b"5-0", [], entry("1-0", ""), b"5-0") is Verdict.CURRENT
    assert verdict(ORIGIN, [], None, ORIGIN) is Verdict.CURRENT  # an empty log, seen from the start


def test_entries_chained_to_the_position_are_applied() -> None:
    assert verdict(b"5-0", [entry("6-0", "5-0"), entry("7-0", "6-0")], entry("1-0", ""), b"7-0") is Verdict.APPLY
    assert verdict(ORIGIN, [entry("6-0", "")], entry("6-0", ""), b"6-0") is Verdict.APPLY  # the log's first entry


def test_a_log_trimmed_past_a_lagging_position_is_read_again() -> None:
    first = entry("9-0", "8-0")  # had an entry before it: trimmed, not lost
    assert verdict(b"5-0", [first], first, b"9-0") is Verdict.RELOAD


def test_a_log_that_lost_the_position_means_redis_lost_what_this_process_saw() -> None:
    # Redis restarted empty, nobody wrote since.
    assert verdict(b"5-0", [], None, ORIGIN) is Verdict.RECOVER
    # Redis restarted empty and another process wrote since: the new log starts from nothing.
    assert verdict(b"5-0", [entry("9-0", "")], entry("9-0", ""), b"9-0") is Verdict.RECOVER
    # A lagging replica was promoted: the log ends before the position...
    assert verdict(b"5-0", [], entry("1-0", ""), b"3-0") is Verdict.RECOVER
    # ...and another process wrote after it, chained to the replica's last entry, not to the position.
    assert verdict(b"5-0", [entry("6-0", "3-0")], entry("1-0", ""), b"6-0") is Verdict.RECOVER
