"""Startup full sync: real `celery -A sorcha_site worker` processes fire `worker_ready`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from peers.store import AdvertisementStore
from registers.sync_lock import Lease
from tasks import startup
from tests.conftest import point_coordination_at
from tests.helpers import wait_until
from tests.orchestration.peer_server import LatePeerService
from tests.orchestration.processes import NodeProcess, node_env, worker_command
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db(transaction=True)

StartProcess = Callable[..., NodeProcess]
ENQUEUED = "event=startup_sync_enqueued"
ALREADY_PENDING = "event=startup_sync_already_pending"
STARTUP_SUCCEEDED = "event=full_sync_succeeded reason=startup"


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


def test_a_starting_worker_pushes_every_public_register_to_the_peer_service(
    peer_service: AdvertisementStore, live_server: Any, node_processes: StartProcess
) -> None:
    # given
    public = {make_register(advertise=True).id for _ in range(3)}
    make_register(advertise=False)

    # when
    node_processes("worker", worker_command("worker"), node_env(live_server.url))

    # then
    wait_until(lambda: local_ids(peer_service) == public, timeout=30, message="the full public set on the Peer")


def test_workers_started_together_enqueue_one_startup_full_sync(
    late_peer_service: LatePeerService, peer_store: AdvertisementStore, node_processes: StartProcess
) -> None:
    # given: the Peer Service is not up yet, so the first startup sync stays pending while both start
    public = {make_register(advertise=True).id for _ in range(2)}
    env = node_env(late_peer_service.url)

    # when
    workers = [node_processes(name, worker_command(name), env) for name in ("first", "second")]
    wait_until(
        lambda: all(w.count(ENQUEUED) + w.count(ALREADY_PENDING) for w in workers),
        timeout=30,
        message="both workers ready",
    )
    late_peer_service.start()

    # then
    assert sum(w.count(ENQUEUED) for w in workers) == 1
    assert sum(w.count(ALREADY_PENDING) for w in workers) == 1
    wait_until(lambda: local_ids(peer_store) == public, timeout=15, message="the full public set on the Peer")
    wait_until(lambda: sum(w.count(STARTUP_SUCCEEDED) for w in workers) == 1, timeout=5)


def test_a_worker_started_before_the_peer_service_pushes_once_it_is_up(
    late_peer_service: LatePeerService, peer_store: AdvertisementStore, node_processes: StartProcess
) -> None:
    # given: a worker whose startup sync has found the Peer Service unreachable
    public = {make_register(advertise=True).id for _ in range(2)}
    worker = node_processes("worker", worker_command("worker"), node_env(late_peer_service.url))
    wait_until(lambda: worker.count("event=full_sync_failed reason=startup will_retry=true"), timeout=30)

    # when
    late_peer_service.start()

    # then
    wait_until(lambda: local_ids(peer_store) == public, timeout=15, message="the full public set on the Peer")


# ------------------------------------------------------- the startup claim, driven in this process
def test_a_second_worker_ready_while_the_startup_sync_is_pending_enqueues_nothing(
    published_tasks: list[tuple[str, dict[str, Any]]], settings: Any, prefix: str
) -> None:
    # given: no worker runs, so the first startup sync stays queued
    settings.REDIS_KEY_PREFIX = prefix
    startup.enqueue_startup_sync()

    # when
    startup.enqueue_startup_sync()

    # then
    assert [name for name, _ in published_tasks] == ["registers.full_sync"]


def test_the_startup_claim_is_released_when_the_startup_sync_ends(
    peer_service: AdvertisementStore, worker: object, published_tasks: list[tuple[str, dict[str, Any]]]
) -> None:
    # given
    startup.enqueue_startup_sync()
    claim = Lease(startup.CLAIM)
    wait_until(lambda: claim.holder() is None, timeout=10, message="the claim released")

    # when: a worker restarted after that
    startup.enqueue_startup_sync()

    # then
    assert [name for name, _ in published_tasks] == ["registers.full_sync", "registers.full_sync"]


def test_a_worker_that_is_no_register_service_enqueues_no_startup_sync(
    published_tasks: list[tuple[str, dict[str, Any]]], settings: Any
) -> None:
    # given
    settings.SERVES_REGISTERS = False

    # when
    startup.enqueue_startup_sync()

    # then
    assert published_tasks == []


def test_a_startup_sync_is_still_enqueued_when_its_claim_cannot_be_taken(
    published_tasks: list[tuple[str, dict[str, Any]]], settings: Any, private_redis: Any
) -> None:
    # given: the Redis holding the claim is down
    point_coordination_at(settings, private_redis.url)
    private_redis.stop()

    # when
    startup.enqueue_startup_sync()

    # then
    assert [(name, kwargs["startup_claim"]) for name, kwargs in published_tasks] == [("registers.full_sync", None)]
