"""Paginated lists with bounded `limit` and `offset`: anything else is a 400 naming the parameter.

DRF's LimitOffsetPagination quietly falls back to the default for a malformed `limit` and passes
any `offset` to the database, where `9223372036854775808` overflows into a 500.
"""

from __future__ import annotations

from django.conf import settings
from rest_framework.exceptions import ValidationError
from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from sorcha_site.bounds import MAX_VERSION

# Far beyond any list, and within every database's 64-bit integers once the limit is added.
OFFSET_MAX = MAX_VERSION


def bounded_int(param: str, raw: str, minimum: int, maximum: int) -> int:
    """Plain decimal digits within [minimum, maximum]; no sign, spaces, `null` or exponent."""
    value = int(raw) if raw.isascii() and raw.isdigit() and len(raw) <= len(str(maximum)) else None
    if value is None or not minimum <= value <= maximum:
        raise ValidationError({param: [f"must be an integer from {minimum} to {maximum}, got {raw[:40]!r}."]})
    return value


class BoundedLimitOffsetPagination(LimitOffsetPagination):
    @property
    def max_limit(self) -> int:  # type: ignore[override]
        return int(settings.SORCHA_LIST_LIMIT_MAX)

    def get_limit(self, request: Request) -> int | None:
        raw = request.query_params.get(self.limit_query_param)
        if raw is None:
            return min(self.default_limit, self.max_limit) if self.default_limit else None
        return bounded_int(self.limit_query_param, raw, 1, self.max_limit)

    def get_offset(self, request: Request) -> int:
        raw = request.query_params.get(self.offset_query_param)
        if raw is None:
            return 0
        return bounded_int(self.offset_query_param, raw, 0, OFFSET_MAX)
