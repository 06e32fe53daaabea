"""`python manage.py resync`: push the complete set of public registers to the Peer Service now."""

from __future__ import annotations

import time
from argparse import ArgumentParser
from typing import Any

from celery.utils.time import get_exponential_backoff_interval
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from registers.advertising import FullSyncResult, full_sync, full_sync_plan
from registers.enqueue import BROKER_ERRORS, enqueue_full_sync
from registers.peer_client import FullSyncRefused, PeerServiceError
from registers.sync_lock import FullSyncBusy, backoff_cap_seconds, full_sync_lease_seconds

MANUAL = "manual"


class Command(BaseCommand):
    help = (
        "Full sync: push every register with advertise=true to the Peer Service (PEER_SERVICE_URL); "
        "the Peer Service removes the local advertisements not listed. Runs in the foreground by default."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        mode = parser.add_mutually_exclusive_group()
        mode.add_argument("--enqueue", action="store_true", help="hand the full sync to a Celery worker instead")
        mode.add_argument("--dry-run", action="store_true", help="print what would be pushed; send nothing")

    def handle(self, *args: Any, **options: Any) -> None:
        if options["dry_run"]:
            self.dry_run()
        elif options["enqueue"]:
            self.enqueue()
        else:
            self.run_now()

    def run_now(self) -> None:
        try:
            result = self.sync_until_accepted()
        except (PeerServiceError, FullSyncBusy) as exc:
            raise CommandError(f"full sync failed: {exc}") from exc
        self.stdout.write(f"full sync succeeded: {result.summary()}")

    def sync_until_accepted(self) -> FullSyncResult:
        """The full sync, tried again while the Peer Service refuses it as stale (a newer full sync was
        applied there: another host's clock, or one stamped on arrival), with the worker's backoff
        (Celery's full jitter, capped at RESYNC_BACKOFF_MAX) for at most one RECONCILE_INTERVAL: by then
        this node's own snapshot is newer, or the Peer Service has voided the blocking one."""
        budget = settings.RECONCILE_INTERVAL
        deadline = time.monotonic() + budget
        attempt = 0
        while True:
            last = time.monotonic() >= deadline
            try:
                # A sync already running (periodic, startup) is waited for, then ours runs on fresh data.
                return full_sync(
                    MANUAL,
                    will_retry=not last,
                    retried=(FullSyncRefused,),
                    wait_for_running=full_sync_lease_seconds(),
                )
            except FullSyncRefused as exc:
                if last:
                    raise CommandError(
                        f"full sync failed: still refused as stale after waiting {budget:g} s (one "
                        f"RECONCILE_INTERVAL): {exc.detail}"
                    ) from exc
                left = max(0.0, deadline - time.monotonic())
                delay = min(left, get_exponential_backoff_interval(1, attempt, backoff_cap_seconds(), True))
                self.stdout.write(
                    f"full sync refused as stale ({exc.detail}); waiting for this node's snapshot to pass the "
                    f"newer one: retrying in {delay:.1f} s (up to {left:.0f} s more, one RECONCILE_INTERVAL)"
                )
                self.stdout.flush()
                time.sleep(delay)
                attempt += 1

    def enqueue(self) -> None:
        try:
            task_id = enqueue_full_sync(MANUAL)
        except BROKER_ERRORS as exc:
            raise CommandError(f"full sync not enqueued, the Celery broker is unreachable: {exc}") from exc
        self.stdout.write(f"full sync enqueued: task_id={task_id}")

    def dry_run(self) -> None:
        registers = requests = 0
        for chunk in full_sync_plan():
            requests += 1
            for planned in chunk:
                registers += 1
                self.stdout.write(f"would advertise {planned.register_id} {planned.name}")
        self.stdout.write(
            f"dry run: registers={registers} requests={requests} "
            "(the Peer Service would remove the local advertisements not listed); nothing was sent"
        )
