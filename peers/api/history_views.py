"""`GET /api/store/pool-history`: the pool's size (local, remote) once a minute over the last day."""

from __future__ import annotations

from django.http import HttpResponse
from drf_spectacular.utils import extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from peers import history
from peers.api.answers import PoolHistory
from sorcha_site.api import json_response, reject_query_parameters
from sorcha_site.schema import error


class PoolHistoryView(APIView):
    @extend_schema(
        responses={200: PoolHistory, 400: error(400, "A query parameter was given: this operation takes none.")},
        summary="The pool's size over the last day, oldest first",
        description="Local and remote advertisements, sampled once a minute by the beat (a day is 1,440 samples).",
    )
    def get(self, request: Request) -> HttpResponse:
        reject_query_parameters(request)
        return json_response(history.pool_history())
