"""Changes whose flush was lost on the way still reach the Peer Service, through the beat's check.

A change waits in the outbox (the database) until a flush delivered it. The flush itself can be
lost: its Redis key with a Redis that restarted empty or failed over, its task with the broker, its
scheduling with a Redis that did not answer. `check_pushes` (the beat, every PUSH_CHECK_INTERVAL)
schedules a flush for changes that waited longer than a scheduled flush should take. Redis and the
broker here are real: a private redis-server restarted empty, a queue purged.
"""

from __future__ import annotations

from typing import Any

import pytest
from rest_framework.test import APIClient

from peers.store import AdvertisementStore
from registers import pending_pushes, pushes, task_names
from sorcha_site.celery import app as celery_app
from tasks.schedule import beat_schedule
from tasks.tasks import check_pushes
from tests.conftest import point_coordination_at
from tests.helpers import wait_until
from tests.redis_server import RedisServer, free_port
from tests.registers.factories import register_body

pytestmark = pytest.mark.django_db(transaction=True)


def flushes(published: list[tuple[str, dict[str, Any]]]) -> list[str]:
    return [kwargs["chain"] for name, kwargs in published if name == task_names.FLUSH_PUSHES]


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


def test_nothing_waiting_schedules_nothing(published_tasks: list[tuple[str, dict[str, Any]]]) -> None:
    assert check_pushes() is None
    assert published_tasks == []


def test_a_change_waiting_less_than_a_flush_takes_is_left_to_its_flush(
    api: APIClient, published_tasks: list[tuple[str, dict[str, Any]]]
) -> None:
    # given: a change whose flush is scheduled
    api.post("/api/registers/", register_body(advertise=True), format="json")
    assert len(flushes(published_tasks)) == 1

    # when
    result = check_pushes()

    # then
    assert result is None
    assert len(flushes(published_tasks)) == 1


def test_a_change_saved_while_redis_was_down_is_flushed_by_the_check(
    api: APIClient,
    settings: Any,
    peer_service: AdvertisementStore,
    published_tasks: list[tuple[str, dict[str, Any]]],
) -> None:
    # given: the Redis of the flush key does not answer when a register is saved
    redis_location = settings.CACHES["coordination"]["LOCATION"]
    point_coordination_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    register_id = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]
    assert flushes(published_tasks) == []
    point_coordination_at(settings, redis_location)

    # when: the beat's check runs once the change is overdue
    wait_until(lambda: check_pushes() is not None, timeout=30, message="the check scheduled a flush")
    [chain] = flushes(published_tasks)
    pushes.flush(chain)

    # then
    assert register_id in local_ids(peer_service)
    assert pending_pushes.take().all_ids() == set()


def test_a_flush_lost_with_its_task_and_a_redis_that_restarted_empty_is_scheduled_again(
    api: APIClient,
    settings: Any,
    private_redis: RedisServer,
    peer_service: AdvertisementStore,
    published_tasks: list[tuple[str, dict[str, Any]]],
) -> None:
    # given: a change whose flush task and flush key are both gone (a failover before they replicated)
    point_coordination_at(settings, private_redis.url)
    register_id = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]
    [lost] = flushes(published_tasks)
    celery_app.control.purge()
    private_redis.stop()
    private_redis.start()

    # when
    wait_until(lambda: check_pushes() is not None, timeout=30, message="the check scheduled a flush")
    chain = flushes(published_tasks)[-1]
    pushes.flush(chain)

    # then
    assert chain != lost
    assert register_id in local_ids(peer_service)


def test_the_check_flushes_overdue_changes_even_while_redis_is_down(
    api: APIClient,
    settings: Any,
    private_redis: RedisServer,
    published_tasks: list[tuple[str, dict[str, Any]]],
) -> None:
    # given: an overdue change, and no Redis to coordinate flushes through
    point_coordination_at(settings, private_redis.url)
    api.post("/api/registers/", register_body(advertise=True), format="json")
    celery_app.control.purge()
    private_redis.stop()

    # when
    wait_until(lambda: check_pushes() is not None, timeout=30, message="the check scheduled a flush")

    # then: the flush goes without the key (at worst it repeats another one's work)
    assert len(flushes(published_tasks)) == 2


def test_a_delivered_change_is_forgotten_but_one_made_again_meanwhile_waits(
    api: APIClient, peer_service: AdvertisementStore
) -> None:
    # given: a flush took a change, and the register changed again while it was sending
    register_id = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]
    taken = pending_pushes.take()
    api.patch(f"/api/registers/{register_id}/", {"advertise": False}, format="json")

    # when
    pending_pushes.delivered(taken)

    # then
    assert pending_pushes.take().all_ids() == {register_id}


def test_the_beat_checks_the_outbox_every_push_check_interval() -> None:
    schedule = beat_schedule(serves_registers=True, reconcile_interval=150, push_check_interval=5)

    assert schedule["check-pushes"]["task"] == task_names.CHECK_PUSHES
    assert schedule["check-pushes"]["schedule"] == 5
    assert schedule["check-pushes"]["options"] == {"expires": 5}
    assert "check-pushes" not in beat_schedule(serves_registers=False, reconcile_interval=150)
