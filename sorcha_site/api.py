"""Shared API helpers: error bodies that name the field, fast JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.views import defaults
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, with every error body carrying a human `detail` line."""
    response = drf_exception_handler(exc, context)
    if response is not None and isinstance(response.data, dict) and "detail" not in response.data:
        response.data = {"detail": describe_errors(response.data), "errors": response.data}
    return response


def describe_errors(errors: Any, path: str = "") -> str:
    """Flatten DRF's nested error structure to `field: message; other: message`."""
    if isinstance(errors, dict):
        parts = [describe_errors(value, f"{path}.{key}" if path else str(key)) for key, value in errors.items()]
        return "; ".join(part for part in parts if part)
    if isinstance(errors, list):
        if all(isinstance(item, str) for item in errors):
            return f"{path}: {' '.join(errors)}" if path else " ".join(errors)
        return "; ".join(describe_errors(item, f"{path}[{index}]") for index, item in enumerate(errors) if item)
    return f"{path}: {errors}" if path else str(errors)


def json_response(payload: Any, status: int = 200) -> HttpResponse:
    """Serialise with orjson: the available list and bulk results are hot paths."""
    return HttpResponse(orjson.dumps(payload), status=status, content_type="application/json")


def error_response(detail: str, status: int = 400, **extra: Any) -> HttpResponse:
    return json_response({"detail": detail, **extra}, status=status)


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler404`: an unmatched path under /api/ answers JSON like the API; elsewhere Django's HTML page."""
    if request.path.startswith("/api/"):
        return error_response(f"Not found: no API operation at {request.path[:200]}", status=404)
    return defaults.page_not_found(request, exception)
