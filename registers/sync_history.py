"""FullSyncRun: the last SYNC_HISTORY_MAX full syncs with the Peer Service, failed ones included.

`AdvertisementSyncState` says how the last full sync went; this says how each one went: the
admin's Sync Status tab draws them (duration against time, coloured by outcome) and lists them.
One row per run, written when the run ends; the oldest beyond the cap are deleted then.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import datetime

from django.conf import settings
from django.db import DatabaseError, models

logger = logging.getLogger(__name__)

# The Peer Service's counts a run records (summed over its requests); none for a run that failed.
COUNT_FIELDS = ("processed", "added", "updated", "removed", "unchanged", "held", "stale")
_ERROR_MAX_LENGTH = 2_000


class FullSyncRun(models.Model):
    class Outcome(models.TextChoices):
        SUCCESS = "success", "success"
        # Failed; the worker tries again (the Peer Service did not answer).
        RETRYING = "retrying", "retrying"
        FAILED = "failed", "failed"

    # Why it ran: startup, periodic, or manual (the admin's Resync now, `manage.py resync`).
    reason = models.CharField(max_length=16)
    started_at = models.DateTimeField()
    duration_seconds = models.FloatField()
    outcome = models.CharField(max_length=16, choices=Outcome.choices)
    registers_pushed = models.PositiveIntegerField(null=True, blank=True)
    processed = models.PositiveIntegerField(null=True, blank=True)
    added = models.PositiveIntegerField(null=True, blank=True)
    updated = models.PositiveIntegerField(null=True, blank=True)
    removed = models.PositiveIntegerField(null=True, blank=True)
    unchanged = models.PositiveIntegerField(null=True, blank=True)
    held = models.PositiveIntegerField(null=True, blank=True, help_text="removals held by the mass-removal guard")
    stale = models.PositiveIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")

    class Meta:
        # Runs never overlap (a lock keeps them apart), so the id orders them as their starts do.
        ordering = ("id",)
        verbose_name = "full sync run"

    def __str__(self) -> str:
        return f"full sync {self.started_at:%Y-%m-%d %H:%M:%S} {self.reason}: {self.outcome}"


def record_success(
    reason: str, started_at: datetime, duration: float, registers_pushed: int, counts: Mapping[str, int]
) -> None:
    _record(
        FullSyncRun(
            reason=reason,
            started_at=started_at,
            duration_seconds=duration,
            outcome=FullSyncRun.Outcome.SUCCESS,
            registers_pushed=registers_pushed,
            **{name: int(counts.get(name, 0)) for name in COUNT_FIELDS},
        )
    )


def record_failure(reason: str, started_at: datetime, duration: float, error: Exception, will_retry: bool) -> None:
    outcome = FullSyncRun.Outcome.RETRYING if will_retry else FullSyncRun.Outcome.FAILED
    _record(
        FullSyncRun(
            reason=reason,
            started_at=started_at,
            duration_seconds=duration,
            outcome=outcome,
            error=(str(error) or type(error).__name__)[:_ERROR_MAX_LENGTH],
        )
    )


def _record(run: FullSyncRun) -> None:
    """Save the run and prune; the history is a view of the syncs, so a database error here is logged, not raised
    (a sync that succeeded stays a success; a failed one raises its own error)."""
    try:
        run.save()
        prune(settings.SYNC_HISTORY_MAX)
    except DatabaseError as exc:
        logger.error(
            "event=sync_history_not_recorded reason=%s outcome=%s started_at=%s error=%r",
            run.reason,
            run.outcome,
            run.started_at.isoformat(),
            exc,
        )


def prune(keep: int) -> int:
    """Delete all but the newest `keep` runs; returns how many were deleted."""
    boundary = list(FullSyncRun.objects.order_by("-id").values_list("id", flat=True)[keep - 1 : keep])
    if not boundary:
        return 0
    deleted, _ = FullSyncRun.objects.filter(id__lt=boundary[0]).delete()
    return deleted


def recent() -> list[FullSyncRun]:
    """The runs kept, oldest first (at most SYNC_HISTORY_MAX, even before the next run prunes a lowered cap)."""
    newest = FullSyncRun.objects.order_by("-id")[: settings.SYNC_HISTORY_MAX]
    return sorted(newest, key=lambda run: run.id)
