"""Liveness and readiness, open to load balancers (they reveal status only).

Both answer GET and HEAD, with or without a trailing slash, over plain HTTP even when
SECURE_SSL_REDIRECT is on (SECURE_REDIRECT_EXEMPT): health checks rarely speak TLS to a node.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.db.utils import Error as DatabaseError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.http import require_safe

from sorcha_site.api import json_response

logger = logging.getLogger(__name__)


# GET and HEAD: load balancers probe with either.
@require_safe
def healthz(request: HttpRequest) -> HttpResponse:
    return json_response({"status": "ok", "service": settings.SORCHA_SERVICE})


@require_safe
def readyz(request: HttpRequest) -> HttpResponse:
    checks: dict[str, str] = {}
    ready = True
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        checks["database"] = "ok"
    except DatabaseError as exc:
        logger.error("event=readyz_database_failed error=%r", exc)
        checks["database"] = "unavailable"
        ready = False
    if settings.SERVES_PEERS:
        from peers.store import get_store

        # A degraded store still serves from memory, so the node stays ready.
        checks["store"] = "degraded" if get_store().degraded else "ok"
    return json_response(
        {"status": "ready" if ready else "unavailable", "service": settings.SORCHA_SERVICE, **checks},
        status=200 if ready else 503,
    )
