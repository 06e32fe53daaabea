"""`GET /api/registers/sync-state`: how the last full sync with the Peer Service went."""

from __future__ import annotations

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from registers.sync_state import AdvertisementSyncState


class SyncStateSerializer(serializers.ModelSerializer[AdvertisementSyncState]):
    # null until the first full sync is attempted
    status = serializers.SerializerMethodField()
    reason = serializers.SerializerMethodField()
    # The times are null until the first attempt, success or scheduled retry.
    lastAttemptAt = serializers.DateTimeField(source="last_attempt_at", allow_null=True)
    lastSuccessAt = serializers.DateTimeField(source="last_success_at", allow_null=True)
    registersPushed = serializers.IntegerField(source="registers_pushed")
    consecutiveFailures = serializers.IntegerField(source="consecutive_failures")
    lastError = serializers.CharField(source="last_error")
    nextRetryAt = serializers.DateTimeField(source="next_retry_at", allow_null=True)

    class Meta:
        model = AdvertisementSyncState
        fields = (
            "status",
            "reason",
            "lastAttemptAt",
            "lastSuccessAt",
            "registersPushed",
            "added",
            "updated",
            "removed",
            "unchanged",
            "held",
            "consecutiveFailures",
            "lastError",
            "nextRetryAt",
        )
        read_only_fields = fields

    def get_status(self, state: AdvertisementSyncState) -> str | None:
        return state.status or None

    def get_reason(self, state: AdvertisementSyncState) -> str | None:
        return state.reason or None


class SyncStateView(APIView):
    @extend_schema(responses={200: SyncStateSerializer}, summary="State of the full sync with the Peer Service")
    def get(self, request: Request) -> Response:
        return Response(SyncStateSerializer(AdvertisementSyncState.load()).data)
