"""Schemathesis hooks of the contract test (loaded by `st run` through SCHEMATHESIS_HOOKS).

They generate what the schema states with `x-` keywords, the rules no JSON Schema keyword can state
(and keep gossip messages invalid: none can be signed):

- `x-earliest` / `x-latest` on client timestamps: from 2000-01-01 to this node's clock plus CLOCK_SKEW_MAX,
  a bound that moves with the clock; valid timestamps are generated from the earliest to a day ago;
- `x-unique-items-by: registerId`: a bulk names each register once;
- `x-same-length-as: registerIds`, with `x-latest` on its items: a digest gives one stamp per register,
  none ahead of the clock.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import schemathesis
from hypothesis import strategies as st
from schemathesis import GenerationMode

EXCHANGE = "/api/peers/exchange/"
BULK_ADVERTISE = "/api/registers/bulk-advertise/"
RECONCILE = "/api/registers/reconcile/"


def static_earliest(document: dict[str, Any]) -> datetime:
    """The one `x-earliest` of the schema's date-time fields that is a moment (`sentAt`'s is relative)."""
    found: set[str] = set()

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            earliest = node.get("x-earliest")
            if node.get("format") == "date-time" and isinstance(earliest, str) and not earliest.startswith("now"):
                found.add(earliest)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(document)
    (earliest,) = found
    return datetime.fromisoformat(earliest).replace(tzinfo=None)


@schemathesis.hook
def after_load_schema(context: schemathesis.HookContext, schema: Any) -> None:
    earliest = static_earliest(schema.raw_schema)
    schemathesis.openapi.format(
        "date-time",
        st.datetimes(min_value=earliest, max_value=datetime.now() - timedelta(days=1), timezones=st.just(UTC)).map(
            lambda moment: moment.isoformat().replace("+00:00", "Z")
        ),
    )


@schemathesis.hook
def filter_case(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    if case.operation.path == EXCHANGE:
        # No generated message carries a valid signature: a gossip message is tested invalid only (the
        # configuration asks for that; a value drawn from an earlier answer may still make one valid).
        return case.meta is None or case.meta.generation.mode is not GenerationMode.POSITIVE
    if not isinstance(case.body, dict):
        return True
    if case.operation.path == BULK_ADVERTISE:
        items = case.body.get("advertisements")
        if not isinstance(items, list):
            return True
        ids = [item.get("registerId") for item in items if isinstance(item, dict) and "registerId" in item]
        return len(ids) == len({str(register_id) for register_id in ids})
    if case.operation.path == RECONCILE:
        ids, stamps = case.body.get("registerIds"), case.body.get("sourceUpdatedAt")
        if not isinstance(ids, list) or not isinstance(stamps, list):
            return True
        now = int(datetime.now(tz=UTC).timestamp() * 1_000_000)
        return len(ids) == len(stamps) and all(not isinstance(stamp, int) or stamp <= now for stamp in stamps)
    return True
