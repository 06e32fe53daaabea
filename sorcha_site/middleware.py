"""Refuse oversized bodies before anything reads them; read chunked bodies (WSGI) within the same bound."""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING

import orjson
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from sorcha_site.api import error_response

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse, WSGIApplication, WSGIEnvironment


class BodySizeLimitMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        limit = settings.SORCHA_MAX_BODY_BYTES
        try:
            length = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return error_response("Content-Length: not a number.", status=400)
        if length > limit:
            return error_response(f"body: {length} bytes is over the limit of {limit} bytes.", status=413)
        return self.get_response(request)


class ChunkedBodies:
    """WSGI wrapper: a `Transfer-Encoding: chunked` body reaches Django with a Content-Length.

    gunicorn de-chunks such a body into `wsgi.input`, but sends no CONTENT_LENGTH, and Django reads
    a body of unknown length as empty (a JSON POST would get a misleading 400). So the body is read
    here, up to SORCHA_MAX_BODY_BYTES (413 beyond), and handed on with its length. A server that does
    not de-chunk (it does not set `wsgi.input_terminated`) gets 411: the raw chunks are not the body.
    """

    def __init__(self, application: WSGIApplication) -> None:
        self.application = application

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        chunked = "chunked" in environ.get("HTTP_TRANSFER_ENCODING", "").lower()
        if chunked and not environ.get("CONTENT_LENGTH"):
            if not environ.get("wsgi.input_terminated"):
                return self.refuse(start_response, 411, "chunked body: send Content-Length instead.")
            limit = settings.SORCHA_MAX_BODY_BYTES
            body = environ["wsgi.input"].read(limit + 1)
            if len(body) > limit:
                return self.refuse(start_response, 413, f"body: more than the limit of {limit} bytes.")
            environ["wsgi.input"] = io.BytesIO(body)
            environ["CONTENT_LENGTH"] = str(len(body))
        return self.application(environ, start_response)

    @staticmethod
    def refuse(start_response: StartResponse, status: int, detail: str) -> list[bytes]:
        body = orjson.dumps({"detail": detail})
        reason = HTTPStatus(status).phrase
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body))), ("Connection", "close")]
        start_response(f"{status} {reason}", headers)
        return [body]
