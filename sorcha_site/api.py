"""Shared API helpers: error bodies that name the field, fast JSON responses."""

from __future__ import annotations

from typing import Any

import orjson
from django.http import HttpRequest, HttpResponse
from django.utils.http import parse_header_parameters
from django.views import defaults
from rest_framework.exceptions import ParseError, UnsupportedMediaType, ValidationError
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from sorcha_site.malformed_ids import malformed_id

JSON_MEDIA_TYPE = "application/json"
# JSON is UTF-8 on the wire (RFC 8259 §8.1); a charset parameter may say so, and nothing else.
JSON_CHARSETS = frozenset({"utf-8", "utf8"})
BODY_METHODS = frozenset({"POST", "PUT", "PATCH"})
# What both APIs say of a body field the endpoint does not take (a typo is never read as "left out").
UNKNOWN_FIELD = "unknown field"
READ_ONLY_FIELD = "read-only field; the server sets it"


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


def json_body_problem(content_type: str, content_length: int) -> str | None:
    """Why a request body is not JSON by its Content-Type, or None.

    No body with no type is fine, and so is no body as text/plain (what a WSGI server reports
    when the client sent no Content-Type); an empty form still declares a form: 415.
    """
    if content_length == 0 and (not content_type or content_type.split(";")[0].strip().lower() == "text/plain"):
        return None
    media_type, params = parse_header_parameters(content_type)
    charset = params.get("charset", "utf-8").lower()
    if media_type.lower() == JSON_MEDIA_TYPE and set(params) <= {"charset"} and charset in JSON_CHARSETS:
        return None
    shown = content_type[:80] if content_type else "(none)"
    return f"Content-Type: {shown!r} is not accepted; request bodies are JSON, sent as {JSON_MEDIA_TYPE}"


def require_json_body(request: Request) -> None:
    """Both APIs take JSON bodies only: a form or multipart body gets 415, never a lenient parse."""
    if request.method not in BODY_METHODS:
        return
    try:
        content_length = int(request.META.get("CONTENT_LENGTH") or 0)
    except ValueError:
        content_length = 0
    problem = json_body_problem(request.META.get("CONTENT_TYPE", ""), content_length)
    if problem is not None:
        raise UnsupportedMediaType(request.META.get("CONTENT_TYPE", ""), detail=problem)


# A query's names are bounded before they are echoed in an error.
_QUERY_NAMES_SHOWN = 10


def reject_query_parameters(request: Request) -> None:
    """An operation that takes no query parameters answers 400 naming the ones it was given."""
    if request.query_params:
        names = sorted(request.query_params)[:_QUERY_NAMES_SHOWN]
        raise ValidationError({name[:80]: ["unknown query parameter; this operation takes none."] for name in names})


def refuse_body_fields(request: Request) -> None:
    """For writes that take no body: none, or `{}`; a field sent is one the operation does not know (400)."""
    require_json_body(request)
    if not request.body:
        return
    try:
        body = orjson.loads(request.body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"body: not valid JSON ({exc})") from exc
    if isinstance(body, dict):
        if body:
            raise ValidationError({str(name)[:64]: [UNKNOWN_FIELD] for name in list(body)[:20]})
        return
    raise ValidationError({"body": ["this operation takes no body (or an empty JSON object)"]})


def page_not_found(request: HttpRequest, exception: Exception) -> HttpResponse:
    """`handler404`: an unmatched path under /api/ answers JSON like the API; elsewhere Django's HTML page."""
    if request.path.startswith("/api/"):
        problem = malformed_id(request.path_info)
        if problem is not None:
            return error_response(problem, status=400)
        return error_response(f"Not found: no API operation at {request.path[:200]}", status=404)
    return defaults.page_not_found(request, exception)
