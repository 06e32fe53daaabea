"""Register CRUD over HTTP. Authentication and permissions are the project defaults."""

from __future__ import annotations

from typing import Any

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError
from rest_framework.request import Request

from registers.api.serializers import RegisterSerializer
from registers.models import Register
from sorcha_site.api import require_json_body
from sorcha_site.bounds import REGISTER_ID_CHARS

TRUE_WORDS = frozenset({"true", "1"})
FALSE_WORDS = frozenset({"false", "0"})


def parse_advertise_filter(raw: str) -> bool:
    """`?advertise=` accepts true/false (or 1/0); anything else is the caller's mistake."""
    word = raw.strip().lower()
    if word in TRUE_WORDS:
        return True
    if word in FALSE_WORDS:
        return False
    raise ValidationError({"advertise": [f"Must be true or false, got {raw[:40]!r}."]})


@extend_schema_view(
    list=extend_schema(
        summary="List registers",
        parameters=[
            OpenApiParameter("advertise", OpenApiTypes.BOOL, description="Only public (true) or private (false)."),
            OpenApiParameter("search", OpenApiTypes.STR, description="Case-insensitive substring of the name."),
        ],
    ),
    create=extend_schema(summary="Create a register"),
    retrieve=extend_schema(summary="Get a register"),
    update=extend_schema(summary="Replace a register"),
    partial_update=extend_schema(summary="Change some fields of a register"),
    destroy=extend_schema(summary="Delete a register"),
)
class RegisterViewSet(viewsets.ModelViewSet[Register]):
    serializer_class = RegisterSerializer
    queryset = Register.objects.all()
    # Only register ids: the Peer Service's fixed paths (available, bulk-advertise, ...) share /api/registers/.
    # The router anchors it with `/?$`, which Django matches with fullmatch: no final newline slips through.
    lookup_value_regex = REGISTER_ID_CHARS

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        # After authentication: an anonymous caller learns 401, not which body types are accepted.
        require_json_body(request)

    def get_queryset(self) -> QuerySet[Register]:
        registers = super().get_queryset()
        if self.action != "list":
            return registers
        advertise = self.request.query_params.get("advertise")
        if advertise is not None:
            registers = registers.filter(advertise=parse_advertise_filter(advertise))
        search = self.request.query_params.get("search", "").strip()
        if search:
            registers = registers.filter(name__icontains=search)
        return registers
