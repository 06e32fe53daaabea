"""AdvertisementSyncState: how the last full sync with the Peer Service went (one row per node)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from django.db import models
from django.db.models import F
from django.utils import timezone

SINGLETON_ID = 1
COUNT_FIELDS = ("added", "updated", "removed", "unchanged", "held")
_ERROR_MAX_LENGTH = 2_000


class AdvertisementSyncState(models.Model):
    class Status(models.TextChoices):
        IN_PROGRESS = "in_progress", "in progress"
        SUCCESS = "success", "success"
        RETRYING = "retrying", "retrying"
        FAILED = "failed", "failed"

    class Reason(models.TextChoices):
        STARTUP = "startup", "startup"
        PERIODIC = "periodic", "periodic"
        MANUAL = "manual", "manual"

    id = models.PositiveSmallIntegerField(primary_key=True, default=SINGLETON_ID, editable=False)
    # Blank until the first full sync is attempted.
    status = models.CharField(max_length=16, choices=Status.choices, blank=True, default="")
    reason = models.CharField(max_length=16, choices=Reason.choices, blank=True, default="")
    last_attempt_at = models.DateTimeField(null=True, blank=True)
    last_success_at = models.DateTimeField(null=True, blank=True)
    registers_pushed = models.PositiveIntegerField(default=0, help_text="Public registers sent by the last success.")
    # The Peer Service's counts for the last successful full sync (summed over its chunks).
    added = models.PositiveIntegerField(default=0)
    updated = models.PositiveIntegerField(default=0)
    removed = models.PositiveIntegerField(default=0)
    unchanged = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0, help_text="Removals held back by the Peer's mass-removal guard.")
    consecutive_failures = models.PositiveIntegerField(default=0)
    last_error = models.TextField(blank=True, default="")
    next_retry_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        verbose_name = "advertisement sync state"
        verbose_name_plural = "advertisement sync state"
        constraints = [models.CheckConstraint(condition=models.Q(id=SINGLETON_ID), name="advertisement_sync_singleton")]

    def __str__(self) -> str:
        return f"full sync: {self.status or 'never attempted'}"

    @classmethod
    def load(cls) -> AdvertisementSyncState:
        """The node's state; an unsaved blank one before the first attempt."""
        return cls.objects.filter(pk=SINGLETON_ID).first() or cls()


def succeeded_since(moment: datetime) -> bool:
    """Whether a full sync succeeded after `moment`."""
    return AdvertisementSyncState.objects.filter(pk=SINGLETON_ID, last_success_at__gt=moment).exists()


def record_attempt(reason: str) -> None:
    AdvertisementSyncState.objects.update_or_create(
        pk=SINGLETON_ID,
        defaults={
            "status": AdvertisementSyncState.Status.IN_PROGRESS,
            "reason": reason,
            "last_attempt_at": timezone.now(),
            "next_retry_at": None,
        },
    )


def record_success(registers_pushed: int, counts: Mapping[str, int]) -> None:
    AdvertisementSyncState.objects.update_or_create(
        pk=SINGLETON_ID,
        defaults={
            "status": AdvertisementSyncState.Status.SUCCESS,
            "last_success_at": timezone.now(),
            "registers_pushed": registers_pushed,
            **{name: counts.get(name, 0) for name in COUNT_FIELDS},
            "consecutive_failures": 0,
            "last_error": "",
            "next_retry_at": None,
        },
    )


def record_failure(error: Exception, will_retry: bool) -> None:
    status = AdvertisementSyncState.Status.RETRYING if will_retry else AdvertisementSyncState.Status.FAILED
    fields = {"status": status, "last_error": str(error)[:_ERROR_MAX_LENGTH]}
    if not AdvertisementSyncState.objects.filter(pk=SINGLETON_ID).update(
        consecutive_failures=F("consecutive_failures") + 1, **fields
    ):
        AdvertisementSyncState.objects.create(consecutive_failures=1, **fields)


def record_next_retry(at: datetime) -> None:
    AdvertisementSyncState.objects.filter(pk=SINGLETON_ID, status=AdvertisementSyncState.Status.RETRYING).update(
        next_retry_at=at
    )
