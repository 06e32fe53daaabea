"""`GET /api/registers/sync-history`: the last SYNC_HISTORY_MAX full syncs with the Peer Service, oldest first."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registers.sync_history import FullSyncRun, recent
from registers.sync_state import AdvertisementSyncState
from sorcha_site.api import reject_query_parameters
from sorcha_site.schema import error


class FullSyncRunSerializer(serializers.ModelSerializer[FullSyncRun]):
    reason = serializers.ChoiceField(
        choices=AdvertisementSyncState.Reason.choices,
        help_text="startup (a worker started), periodic (the beat), manual (Resync now, `manage.py resync`) or "
        "recovery (Redis lost pending pushes)",
    )
    startedAt = serializers.DateTimeField(source="started_at")
    durationSeconds = serializers.FloatField(source="duration_seconds", min_value=0)
    outcome = serializers.ChoiceField(
        choices=FullSyncRun.Outcome.choices, help_text="retrying: failed, and the worker tries again"
    )
    # The Peer Service's counts, summed over the run's requests; null when the run failed.
    registersPushed = serializers.IntegerField(source="registers_pushed", allow_null=True, min_value=0)
    processed = serializers.IntegerField(allow_null=True, min_value=0)
    added = serializers.IntegerField(allow_null=True, min_value=0)
    updated = serializers.IntegerField(allow_null=True, min_value=0)
    removed = serializers.IntegerField(allow_null=True, min_value=0)
    unchanged = serializers.IntegerField(allow_null=True, min_value=0)
    held = serializers.IntegerField(
        allow_null=True, min_value=0, help_text="removals held back by the Peer Service's mass-removal guard"
    )
    stale = serializers.IntegerField(allow_null=True, min_value=0)
    error = serializers.CharField(allow_blank=True, help_text="why the run failed; empty on success")

    class Meta:
        model = FullSyncRun
        fields = (
            "id",
            "reason",
            "startedAt",
            "durationSeconds",
            "outcome",
            "registersPushed",
            "processed",
            "added",
            "updated",
            "removed",
            "unchanged",
            "held",
            "stale",
            "error",
        )
        read_only_fields = fields


class SyncHistoryView(APIView):
    @extend_schema(
        responses={
            200: FullSyncRunSerializer(many=True),
            400: error(400, "A query parameter was given: this operation takes none."),
        },
        summary="The last SYNC_HISTORY_MAX full syncs with the Peer Service, oldest first",
        description="One entry per full sync run (failed ones included), as the admin's Sync Status tab draws them.",
    )
    def get(self, request: Request) -> Response:
        reject_query_parameters(request)
        return Response(FullSyncRunSerializer(recent(), many=True).data)
