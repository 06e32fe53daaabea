"""Build registers for tests: valid defaults, any field overridable."""

from __future__ import annotations

import itertools
from typing import Any

from registers.models import Register

_sequence = itertools.count(1)


def make_register(**overrides: Any) -> Register:
    number = next(_sequence)
    fields: dict[str, Any] = {
        "name": f"register-{number}",
        "description": f"Test register number {number}.",
        "advertise": False,
        **overrides,
    }
    return Register.objects.create(**fields)


def register_body(**overrides: Any) -> dict[str, Any]:
    """A valid JSON body for POST /api/registers/, in the API's camelCase."""
    number = next(_sequence)
    return {
        "name": f"register-{number}",
        "description": "A register created through the API.",
        "advertise": True,
        "isFullReplica": False,
        "latestVersion": 7,
        "latestDocketVersion": 3,
        **overrides,
    }
