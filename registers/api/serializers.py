"""JSON shape of a register: camelCase names mapped explicitly onto the model's fields."""

from __future__ import annotations

from rest_framework import serializers

from registers.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, VERSION_MAX, Register


class RegisterSerializer(serializers.ModelSerializer[Register]):
    id = serializers.CharField(read_only=True)
    name = serializers.CharField(min_length=1, max_length=NAME_MAX_LENGTH)
    description = serializers.CharField(max_length=DESCRIPTION_MAX_LENGTH, allow_blank=True, required=False)
    advertise = serializers.BooleanField(required=False)
    isFullReplica = serializers.BooleanField(source="is_full_replica", required=False)
    latestVersion = serializers.IntegerField(
        source="latest_version", min_value=0, max_value=VERSION_MAX, required=False
    )
    latestDocketVersion = serializers.IntegerField(
        source="latest_docket_version", min_value=0, max_value=VERSION_MAX, required=False
    )
    createdAt = serializers.DateTimeField(source="created_at", read_only=True)
    updatedAt = serializers.DateTimeField(source="updated_at", read_only=True)

    class Meta:
        model = Register
        fields = (
            "id",
            "name",
            "description",
            "advertise",
            "isFullReplica",
            "latestVersion",
            "latestDocketVersion",
            "createdAt",
            "updatedAt",
        )


class ResyncQueuedSerializer(serializers.Serializer[dict[str, str]]):
    """The answer of `POST /api/registers/resync` (documentation only)."""

    taskId = serializers.CharField(help_text="the Celery task's id")
    queuedAt = serializers.DateTimeField(help_text="tells this sync's outcome in the sync state from an earlier one's")
