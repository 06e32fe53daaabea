"""A path that names an operation but for a malformed id: which id parameter is at fault, and why.

The routes match ids exactly (a register id is 32 lowercase hex characters, a peer id digits), so that
the Peer Service's fixed paths under /api/registers/ never reach the register routes. A path they do not
match would answer "no API operation"; `handler404` asks this module first whether the path matches an
operation once one of its segments is replaced by a well-formed id. If so, that segment is the malformed
id and the answer is 400 naming its parameter.
"""

from __future__ import annotations

from django.urls import Resolver404, resolve
from rest_framework.exceptions import APIException

from sorcha_site.schema import camel_case

REGISTER_ID = "a register id (32 lowercase hex characters)"
PEER_ID_MAX = 2**63 - 1
PEER_ID = f"a peer id (an integer from 1 to {PEER_ID_MAX})"
# Well-formed stand-ins: neither matches the other's route, so the kind found is the route's own.
_STAND_INS = (("f" * 32, REGISTER_ID), ("1", PEER_ID))
# No operation has more segments than this; a longer path is not worth the resolver's time.
_MAX_SEGMENTS = 8


class MalformedId(APIException):
    status_code = 400
    default_code = "malformed_id"


def parameter_name(kwarg: str) -> str:
    """The parameter as the schema names it: the routers' `pk` is `id`, `register_id` is `registerId`."""
    return "id" if kwarg == "pk" else camel_case(kwarg)


def describe(parameter: str, value: str, kind: str) -> str:
    return f"{parameter}: {value[:64]!r} is not {kind}"


def malformed_id(path_info: str) -> str | None:
    """`id: 'NOTANID' is not a register id (...)` when only an id keeps the path from an operation."""
    segments = path_info.split("/")
    if len(segments) > _MAX_SEGMENTS + 2:
        return None
    for index, segment in enumerate(segments):
        if not segment or index < 2:  # "" before the first slash, then "api"
            continue
        for stand_in, kind in _STAND_INS:
            candidate = "/".join([*segments[:index], stand_in, *segments[index + 1 :]])
            try:
                match = resolve(candidate)
            except Resolver404:
                continue
            for kwarg, value in match.kwargs.items():
                if value == stand_in:
                    return describe(parameter_name(kwarg), segment, kind)
    return None


def check_peer_id(raw: str) -> int:
    """The peer id of a path; MalformedId (400) when it is not an integer a database row can have."""
    if raw.isascii() and raw.isdigit() and 1 <= int(raw) <= PEER_ID_MAX:
        return int(raw)
    raise MalformedId(describe("id", raw, PEER_ID))
