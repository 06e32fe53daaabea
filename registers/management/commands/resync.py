"""`python manage.py resync`: push the complete set of public registers to the Peer Service now."""

from __future__ import annotations

from argparse import ArgumentParser
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from registers.advertising import full_sync, full_sync_plan
from registers.enqueue import BROKER_ERRORS, enqueue_full_sync
from registers.peer_client import PeerServiceError
from registers.sync_lock import FullSyncBusy, full_sync_lease_seconds

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
            # A sync already running (periodic, startup) is waited for, then ours runs on fresh data.
            result = full_sync(MANUAL, wait_for_running=full_sync_lease_seconds())
        except (PeerServiceError, FullSyncBusy) as exc:
            raise CommandError(f"full sync failed: {exc}") from exc
        self.stdout.write(f"full sync succeeded: {result.summary()}")

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
