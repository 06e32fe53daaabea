"""The Register Service's ground truth: the registers this node hosts."""

from __future__ import annotations

import uuid
from typing import Any

from django.core.validators import MaxLengthValidator, MaxValueValidator, MinLengthValidator, RegexValidator
from django.db import models, transaction

from sorcha_site.bounds import MAX_VERSION, REGISTER_ID_CHARS

NAME_MAX_LENGTH = 38
DESCRIPTION_MAX_LENGTH = 2048
# The Peer API's bound too (JSON clients lose integer precision above 2^53): one rule on both APIs.
VERSION_MAX = MAX_VERSION

# A UUID without hyphens: the same form the Peer Service accepts before it builds a Redis key.
# \A...\Z, not ^...$: `$` would accept a final newline.
validate_register_id = RegexValidator(
    regex=rf"\A{REGISTER_ID_CHARS}\Z",
    message="A register id is exactly 32 lowercase hexadecimal characters.",
    code="invalid_register_id",
)


def new_register_id() -> str:
    return uuid.uuid4().hex


class Register(models.Model):
    id = models.CharField(
        primary_key=True,
        max_length=32,
        default=new_register_id,
        editable=False,
        validators=[validate_register_id],
    )
    name = models.CharField(max_length=NAME_MAX_LENGTH, validators=[MinLengthValidator(1)])
    # TextField's max_length only sizes form widgets, so the validator enforces it.
    description = models.TextField(
        max_length=DESCRIPTION_MAX_LENGTH,
        blank=True,
        default="",
        validators=[MaxLengthValidator(DESCRIPTION_MAX_LENGTH)],
    )
    advertise = models.BooleanField(default=False, db_index=True, help_text="Public: advertised to the peer network.")
    is_full_replica = models.BooleanField(default=True)
    latest_version = models.PositiveBigIntegerField(default=0, validators=[MaxValueValidator(VERSION_MAX)])
    latest_docket_version = models.PositiveBigIntegerField(default=0, validators=[MaxValueValidator(VERSION_MAX)])
    created_at = models.DateTimeField(auto_now_add=True)
    # Sent to the Peer Service as `sourceUpdatedAt`, where it orders the changes to this register.
    # Django stores DateTimeField with microseconds on SQLite, PostgreSQL and MySQL (datetime(6)).
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        # The id breaks ties so that paginated lists never repeat or skip a register.
        ordering = ("-created_at", "id")

    def __str__(self) -> str:
        return f"{self.name} ({self.id})"

    # A save or delete and the push it owes (the outbox row its signal writes) commit together.
    def save(self, *args: Any, **kwargs: Any) -> None:
        with transaction.atomic():
            super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        with transaction.atomic():
            return super().delete(*args, **kwargs)


from registers.pending_pushes import PendingPush  # noqa: E402,F401
from registers.sync_history import FullSyncRun  # noqa: E402,F401
from registers.sync_state import AdvertisementSyncState  # noqa: E402,F401
