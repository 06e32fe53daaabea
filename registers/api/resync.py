"""`POST /api/registers/resync`: an operator asks for a full sync now (the admin's *Resync now*)."""

from __future__ import annotations

import logging

from django.http import HttpResponse
from django.utils import timezone
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.request import Request
from rest_framework.views import APIView

from registers import enqueue
from registers.api.serializers import ResyncQueuedSerializer
from sorcha_site import schema
from sorcha_site.api import error_response, json_response, refuse_body_fields
from sorcha_site.auth import IsServiceOrStaff

logger = logging.getLogger(__name__)

MANUAL_REASON = "manual"


class ResyncView(APIView):
    # The service token's holder, or a staff user (the admin page, with its session and CSRF token).
    permission_classes = [IsServiceOrStaff]

    @extend_schema(
        request=None,
        responses={
            202: OpenApiResponse(ResyncQueuedSerializer, description="full sync queued"),
            403: schema.error(403, "Neither the service token nor a staff user."),
            503: schema.error(503, "The Celery broker is unreachable; nothing was queued."),
        },
        summary="Queue a full sync of the advertised registers to the Peer Service now",
    )
    def post(self, request: Request) -> HttpResponse:
        refuse_body_fields(request)
        # Taken before sending: a worker may start the sync (and stamp its attempt) before send_task returns.
        queued_at = timezone.now()
        try:
            task_id = enqueue.enqueue_full_sync(MANUAL_REASON)
        except enqueue.BROKER_ERRORS as exc:
            logger.error("event=resync_not_queued reason=%s user=%s error=%r", MANUAL_REASON, request.user, str(exc))
            return error_response(
                "The task queue (Celery broker) is unreachable, so no full sync was queued. "
                "The periodic reconciliation runs once it is back; try again later.",
                status=503,
            )
        # queuedAt lets a caller tell this sync's outcome in the sync state from an earlier one's.
        return json_response({"taskId": task_id, "queuedAt": queued_at.isoformat()}, status=202)
