"""Bounds on whatever crosses the network: register ids, timestamps, versions and text.

One module for both APIs and gossip, so every door checks the same thing the same way
(ARCHITECTURE §4, "Identity" and "Time is bounded"). Pure functions: no settings are read
here except through the explicit `skew` argument's default.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

# A register id is 32 lowercase hex characters, matched in full (never `re.match` with `$`,
# which accepts a final newline).
REGISTER_ID_CHARS = "[0-9a-f]{32}"
REGISTER_ID_RE = re.compile(REGISTER_ID_CHARS)
# Text as the schema states it (`pattern`): a name has a visible character, no text has a NUL.
NAME_PATTERN = r"^[^\x00]*[^\s\x00][^\x00]*$"
TEXT_PATTERN = r"^[^\x00]*$"
# JSON clients (JavaScript among them) lose integer precision above 2^53.
MAX_VERSION = 2**53
# No timestamp a client sends may lie before this moment.
MIN_MOMENT = datetime(2000, 1, 1, tzinfo=UTC)
MIN_MOMENT_MICROS = 946_684_800_000_000
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
# The bounds of a client's timestamp, as the schema states them: the latest moves with the clock, so
# no JSON Schema keyword can say it; `x-earliest` and `x-latest` do, beside the description.
MOMENT_SCHEMA_BOUNDS = {"x-earliest": "2000-01-01T00:00:00Z", "x-latest": "now + CLOCK_SKEW_MAX"}


def is_register_id(value: object) -> bool:
    return isinstance(value, str) and REGISTER_ID_RE.fullmatch(value) is not None


def now_micros() -> int:
    return time.time_ns() // 1000


def clock_skew_max() -> float:
    from django.conf import settings

    return float(getattr(settings, "CLOCK_SKEW_MAX", 300.0))


def moment_micros(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime, exactly (no float rounding).

    Subtracting aware datetimes never converts either to UTC, so `9999-12-31T23:59:59-23:59`
    (after year 9999 in UTC) and `0001-01-01T00:00:00+23:59` (before year 1) do not overflow.
    """
    delta = moment - EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def moment_problem(micros: int, *, now: int | None = None, skew: float | None = None) -> str | None:
    """Why a client's timestamp is out of bounds, or None when it is within them.

    Bounds: not before 2000-01-01 and not after the receiver's clock plus `CLOCK_SKEW_MAX`.
    """
    if micros < MIN_MOMENT_MICROS:
        return "must not be before 2000-01-01T00:00:00Z"
    now = now_micros() if now is None else now
    skew = clock_skew_max() if skew is None else skew
    if micros > now + int(skew * 1_000_000):
        return f"is more than CLOCK_SKEW_MAX ({skew:g} s) ahead of this node's clock"
    return None


def check_moment(field: str, moment: datetime, *, now: int | None = None, skew: float | None = None) -> int:
    """The moment in microseconds; ValueError naming the field when it is out of bounds."""
    micros = moment_micros(moment)
    problem = moment_problem(micros, now=now, skew=skew)
    if problem is not None:
        raise ValueError(f"{field}: {problem}")
    return micros


def text_problem(value: str, *, blank_allowed: bool = True) -> str | None:
    """NUL bytes are never allowed (PostgreSQL refuses them); blank only where a field allows it."""
    if "\x00" in value:
        return "must not contain NUL characters"
    if not blank_allowed and not value.strip():
        return "must not be blank"
    return None
