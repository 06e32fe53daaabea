"""`/api/schema/` and `/api/docs/`: protected like the rest of the API unless API_DOCS_PUBLIC is on."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.http import HttpResponseBase
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework import exceptions
from rest_framework.permissions import AllowAny, BasePermission, IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView


def json_errors(view: APIView) -> None:
    """Errors of the docs views answer JSON like the rest of the API (not YAML, nor a template)."""
    view.request.accepted_renderer = JSONRenderer()
    view.request.accepted_media_type = "application/json"


def docs_permissions() -> list[BasePermission]:
    # Read per request (not at import as drf-spectacular's SERVE_PERMISSIONS is), so the setting always holds.
    return [AllowAny()] if settings.API_DOCS_PUBLIC else [IsAuthenticated()]


class SchemaView(SpectacularAPIView):
    def get_permissions(self) -> list[BasePermission]:
        return docs_permissions()

    def handle_exception(self, exc: Exception) -> Any:
        json_errors(self)
        return super().handle_exception(exc)


class SwaggerView(SpectacularSwaggerView):
    """Swagger UI from this node's static files; an operator without a session is sent to the admin's login."""

    def get_permissions(self) -> list[BasePermission]:
        return docs_permissions()

    def handle_exception(self, exc: Exception) -> Any:
        bearer = self.request.headers.get("Authorization", "")
        if isinstance(exc, exceptions.NotAuthenticated) and not bearer:
            response: HttpResponseBase = redirect_to_login(self.request.get_full_path(), "admin:login")
            return response
        json_errors(self)
        return super().handle_exception(exc)
