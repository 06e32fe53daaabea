"""Periodic reconciliation (user story 3): a real beat and worker with a half-second interval.

Pushes queued by this test process never reach these processes (they consume the queues of
their own key prefix), so whatever the Peer Service receives here came from a full sync.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.utils import timezone

from peers.store import AdvertisementStore
from registers.models import AdvertisementSyncState, Register
from tests.helpers import wait_until
from tests.orchestration.processes import NodeProcess, beat_command, node_env, worker_command
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def reconciling_node(
    live_server: Any, django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[list[NodeProcess]]:
    log_dir = tmp_path_factory.mktemp("periodic")
    env = node_env(live_server.url, RECONCILE_INTERVAL="0.5")
    processes = [
        NodeProcess("worker", worker_command("worker"), env, log_dir),
        NodeProcess("beat", beat_command(log_dir / "celerybeat-schedule"), env, log_dir),
    ]
    yield processes
    for process in processes:
        process.stop()


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


def test_the_periodic_full_sync_restores_an_advertisement_deleted_behind_its_back(
    reconciling_node: list[NodeProcess], peer_service: AdvertisementStore
) -> None:
    # given
    register = make_register(advertise=True)
    wait_until(lambda: peer_service.local_advertisement(register.id), timeout=30, message="the first full sync")

    # when: an operator deletes the advertisement on the Peer Service directly
    peer_service.remove(register.id)
    assert peer_service.local_advertisement(register.id) is None

    # then
    wait_until(lambda: peer_service.local_advertisement(register.id), timeout=15, message="the restored advertisement")


def test_the_periodic_full_sync_removes_a_register_unadvertised_without_a_push(
    reconciling_node: list[NodeProcess], peer_service: AdvertisementStore
) -> None:
    # given
    register = make_register(advertise=True)
    wait_until(lambda: peer_service.local_advertisement(register.id), timeout=30, message="the first full sync")

    # when: a queryset update skips save() and so the push
    Register.objects.filter(pk=register.pk).update(advertise=False)

    # then
    wait_until(lambda: peer_service.local_advertisement(register.id) is None, timeout=15, message="the removal")


def test_a_periodic_full_sync_with_nothing_changed_reports_everything_unchanged(
    reconciling_node: list[NodeProcess], peer_service: AdvertisementStore
) -> None:
    # given: the Peer Service holds exactly the public set
    public = {make_register(advertise=True).id for _ in range(2)}
    wait_until(lambda: local_ids(peer_service) == public, timeout=30, message="the first full sync")
    in_step_since = timezone.now()

    # when: the next periodic run
    def next_periodic_success() -> AdvertisementSyncState | None:
        state = AdvertisementSyncState.load()
        ran_since = state.last_attempt_at is not None and state.last_attempt_at > in_step_since
        return state if ran_since and (state.reason, state.status) == ("periodic", "success") else None

    state = wait_until(next_periodic_success, timeout=15, message="a periodic full sync after the first")

    # then
    assert (state.registers_pushed, state.unchanged) == (2, 2)
    assert (state.added, state.updated, state.removed, state.held) == (0, 0, 0, 0)
    assert local_ids(peer_service) == public
