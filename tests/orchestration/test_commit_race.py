"""Issue 10, case 9: a register committed just after a full sync read the database.

Its `updated_at` was set before the commit, so before the snapshot; its push can reach the
Peer Service before the full sync does. Without a margin the sweep removes it (and its
tombstone then refuses it); with `FULL_SYNC_SNAPSHOT_MARGIN` at least the transaction's
length, it counts as changed after the snapshot and survives.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection, transaction
from django.utils import timezone

from peers.store import AdvertisementStore
from registers.advertising import full_sync
from registers.models import Register
from registers.push_delivery import push_changes
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db(transaction=True)


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


class HeldTransaction(threading.Thread):
    """Creates a public register in a transaction that stays open until told to commit."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.created = threading.Event()
        self.commit = threading.Event()
        self.done = threading.Event()
        self.register_id = ""
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            with transaction.atomic():
                self.register_id = make_register(advertise=True).id
                self.created.set()
                if not self.commit.wait(timeout=30):
                    raise TimeoutError("never told to commit")
        except BaseException as exc:  # reported to the test thread
            self.error = exc
        finally:
            connection.close()
            self.created.set()
            self.done.set()


@pytest.mark.skipif(
    connection.vendor == "sqlite",
    reason="SQLite serialises writers: the full sync's own write waits for the open transaction, so the race "
    "cannot happen there; CI runs this test on PostgreSQL",
)
@pytest.mark.parametrize("margin, survives", [(10.0, True), (0.0, False)])
def test_a_register_whose_transaction_was_open_across_the_full_sync_read(
    peer_service: AdvertisementStore, settings: Any, margin: float, survives: bool
) -> None:
    settings.FULL_SYNC_SNAPSHOT_MARGIN = margin
    make_register(advertise=True)  # so the sync is not empty
    held = HeldTransaction()
    held.start()
    assert held.created.wait(timeout=10) and held.error is None

    def between_read_and_send() -> None:
        """Called after the full sync read the database: commit, and the push arrives first."""
        if held.done.is_set():
            return
        held.commit.set()
        assert held.done.wait(timeout=10) and held.error is None
        push_changes([held.register_id], {})

    full_sync("manual", heartbeat=between_read_and_send)

    assert (held.register_id in local_ids(peer_service)) is survives
    if survives:
        # and the next full sync, which reads it, keeps it
        full_sync("manual")
        assert held.register_id in local_ids(peer_service)


def test_a_register_updated_just_before_the_snapshot_and_pushed_before_the_sync_survives_the_sweep(
    peer_service: AdvertisementStore, settings: Any
) -> None:
    """The same race on any database: the register appears between the read and the send with an
    updated_at before the snapshot (as an open transaction leaves it)."""
    settings.FULL_SYNC_SNAPSHOT_MARGIN = 10.0
    make_register(advertise=True)
    late: list[str] = []

    def between_read_and_send() -> None:
        if late:
            return
        register = make_register(advertise=True)
        Register.objects.filter(pk=register.pk).update(updated_at=timezone.now() - timedelta(seconds=2))
        push_changes([register.id], {})
        late.append(register.id)

    full_sync("manual", heartbeat=between_read_and_send)

    assert late[0] in local_ids(peer_service)
