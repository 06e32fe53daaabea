"""JSON shape of a register: camelCase names mapped explicitly onto the model's fields.

Fields are as strict about types as the Peer API's pydantic models: a JSON string is not a number,
a number is not a boolean, and text never holds a NUL character (sorcha_site.bounds).
"""

from __future__ import annotations

from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers

from registers.models import DESCRIPTION_MAX_LENGTH, NAME_MAX_LENGTH, VERSION_MAX, Register
from sorcha_site import bounds
from sorcha_site.api import READ_ONLY_FIELD, UNKNOWN_FIELD


class StrictBooleanField(serializers.BooleanField):
    """JSON `true`/`false` only: DRF's field would read "yes", "on" or 1 as true."""

    def to_internal_value(self, data: Any) -> bool:
        if isinstance(data, bool):
            return data
        self.fail("invalid", input=data)


class StrictIntegerField(serializers.IntegerField):
    """JSON integers only: DRF's field would take "7", 7.0 or true."""

    default_error_messages = {"invalid": "A JSON integer is required."}

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, int) and not isinstance(data, bool):
            return data
        self.fail("invalid")


class StrictCharField(serializers.CharField):
    """JSON strings only (DRF's field would turn 12 into "12"), never with a NUL character."""

    default_error_messages = {"invalid": "A JSON string is required."}

    def to_internal_value(self, data: Any) -> str:
        if not isinstance(data, str):
            self.fail("invalid")
        problem = bounds.text_problem(data)
        if problem is not None:
            raise serializers.ValidationError(problem, code="null_characters_not_allowed")
        return super().to_internal_value(data)


class RegisterSerializer(serializers.ModelSerializer[Register]):
    id = serializers.CharField(read_only=True)
    # The patterns state in the schema what StrictCharField checks (with messages that name the rule).
    name = StrictCharField(min_length=1, max_length=NAME_MAX_LENGTH, validators=[RegexValidator(bounds.NAME_PATTERN)])
    description = StrictCharField(
        max_length=DESCRIPTION_MAX_LENGTH,
        allow_blank=True,
        required=False,
        validators=[RegexValidator(bounds.TEXT_PATTERN)],
    )
    # Left out of a PUT (as of a PATCH), a field keeps its stored value: a PUT never clears `advertise`.
    advertise = StrictBooleanField(required=False)
    isFullReplica = StrictBooleanField(source="is_full_replica", required=False)
    latestVersion = StrictIntegerField(source="latest_version", min_value=0, max_value=VERSION_MAX, required=False)
    latestDocketVersion = StrictIntegerField(
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

    def to_internal_value(self, data: Any) -> Any:
        # DRF drops fields it does not know: `advertize` for `advertise` would create a private register.
        if isinstance(data, dict):
            refused = {
                str(name)[:64]: [READ_ONLY_FIELD if name in self.fields else UNKNOWN_FIELD]
                for name in data
                if name not in self.fields or self.fields[name].read_only
            }
            if refused:
                raise serializers.ValidationError(dict(list(refused.items())[:20]))
        return super().to_internal_value(data)


class ResyncQueuedSerializer(serializers.Serializer[dict[str, str]]):
    """The answer of `POST /api/registers/resync` (documentation only)."""

    taskId = serializers.CharField(help_text="the Celery task's id")
    queuedAt = serializers.DateTimeField(help_text="tells this sync's outcome in the sync state from an earlier one's")
