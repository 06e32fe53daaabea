"""Register CRUD over HTTP. Authentication and permissions are the project defaults."""

from __future__ import annotations

from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import viewsets
from rest_framework.exceptions import ValidationError

from registers.api.serializers import RegisterSerializer
from registers.models import REGISTER_ID_PATTERN, Register

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
    lookup_value_regex = REGISTER_ID_PATTERN

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
