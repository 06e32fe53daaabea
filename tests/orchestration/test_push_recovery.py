"""Pushes that only a full sync can carry: lost with the Register Service's Redis, or deferred.

Redis here is real: a restart of a private server comes back empty (as after a crash without
persistence), and a replica promoted with `REPLICAOF NO ONE` is what Sentinel does at a failover.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Iterator
from typing import Any

import pytest
from rest_framework.test import APIClient

from registers import enqueue, push_recovery, task_names
from registers.sync_state import AdvertisementSyncState
from tasks.schedule import beat_schedule
from tasks.tasks import check_redis
from tests.conftest import point_coordination_at
from tests.helpers import wait_until
from tests.orchestration.processes import BIN, node_env
from tests.redis_server import RedisServer, free_port
from tests.registers.factories import register_body

pytestmark = pytest.mark.django_db(transaction=True)

RECOVERY = (task_names.FULL_SYNC, {"reason": "recovery"})


@pytest.fixture
def coordination_redis(settings: Any, private_redis: RedisServer) -> RedisServer:
    """The coordination keys (pending pushes, leases, the lineage) on a Redis this test may restart."""
    point_coordination_at(settings, private_redis.url)
    return private_redis


@pytest.fixture
def replica(private_redis: RedisServer) -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    server.client().replicaof("127.0.0.1", private_redis.port)
    wait_until(
        lambda: server.client().info("replication").get("master_link_status") == "up",
        timeout=20,
        message="the replica in sync",
    )
    yield server
    server.stop()


def recorded_lineage() -> str:
    return AdvertisementSyncState.objects.get().redis_lineage


def test_the_first_lineage_a_node_sees_is_recorded_without_a_repair(coordination_redis: RedisServer) -> None:
    # when
    due = push_recovery.claim_repair()

    # then: the startup full sync carries everything anyway
    assert due is False
    assert recorded_lineage() == coordination_redis.client().info("replication")["master_replid"]


def test_redis_restarted_empty_makes_exactly_one_repair_due(coordination_redis: RedisServer) -> None:
    # given
    push_recovery.mark_carried()
    before = recorded_lineage()

    # when: Redis comes back without what it held
    coordination_redis.stop()
    coordination_redis.start()

    # then: one caller claims the repair, the next finds nothing due
    assert push_recovery.claim_repair() is True
    assert push_recovery.claim_repair() is False
    assert recorded_lineage() != before


def test_a_promoted_replica_makes_a_repair_due(
    settings: Any, coordination_redis: RedisServer, replica: RedisServer
) -> None:
    # given: the node reads the replica's lineage while it replicates the primary (they share it)
    point_coordination_at(settings, replica.url)
    push_recovery.mark_carried()
    assert push_recovery.claim_repair() is False

    # when: the replica is promoted, as Sentinel does when the primary dies
    replica.client().replicaof("NO", "ONE")

    # then
    assert push_recovery.claim_repair() is True
    assert push_recovery.claim_repair() is False


def test_a_full_sync_that_started_after_the_change_leaves_nothing_due(coordination_redis: RedisServer) -> None:
    # given
    push_recovery.mark_carried()
    coordination_redis.stop()
    coordination_redis.start()
    push_recovery.note_deferred()

    # when: a full sync starts (it reads the database after this)
    push_recovery.mark_carried()

    # then
    assert push_recovery.claim_repair() is False


def test_a_push_deferred_while_redis_is_down_queues_a_recovery_full_sync_at_the_next_check(
    api: APIClient, settings: Any, published_tasks: list[tuple[str, dict[str, Any]]]
) -> None:
    # given: a register saved while the Redis where pushes wait is down
    point_coordination_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    response = api.post("/api/registers/", register_body(advertise=True), format="json")
    assert response.status_code == 201
    assert published_tasks == []

    # when: Redis answers again and the beat's check runs
    point_coordination_at(settings, settings.CACHES["advertisements"]["LOCATION"])
    check_redis()
    check_redis()

    # then: one full sync carries the change
    assert published_tasks == [RECOVERY]


def test_the_check_skips_quietly_while_redis_is_down(
    settings: Any, published_tasks: list[tuple[str, dict[str, Any]]], caplog: pytest.LogCaptureFixture
) -> None:
    # given
    point_coordination_at(settings, f"redis://127.0.0.1:{free_port()}/0")
    caplog.set_level(logging.INFO)

    # when
    result = check_redis()

    # then
    assert result is None
    assert published_tasks == []
    assert any("event=redis_check_skipped" in record.getMessage() for record in caplog.records)


def test_a_repair_the_broker_refuses_stays_due(
    live_server: Any, published_tasks: list[tuple[str, dict[str, Any]]]
) -> None:
    # given: a process of this node whose broker is down finds a repair due (pushes were deferred)
    code = (
        "from registers import enqueue, push_recovery\n"
        "push_recovery.note_deferred()\n"
        "try:\n"
        "    enqueue.enqueue_recovery_if_due()\n"
        "except enqueue.BROKER_ERRORS:\n"
        "    print('refused')\n"
    )
    env = node_env(live_server.url, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/1")
    refused = subprocess.run(
        [str(BIN / "python"), "manage.py", "shell", "--verbosity", "0", "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert refused.stdout.strip() == "refused", refused.stderr

    # when: a process whose broker answers checks
    task_id = enqueue.enqueue_recovery_if_due()

    # then: the repair was still due, and is queued once
    assert task_id is not None
    assert published_tasks == [RECOVERY]


def test_the_beat_checks_redis_every_redis_check_interval() -> None:
    schedule = beat_schedule(serves_registers=True, reconcile_interval=150, redis_check_interval=5)

    assert schedule["check-redis"]["task"] == task_names.CHECK_REDIS
    assert schedule["check-redis"]["schedule"] == 5
    assert schedule["check-redis"]["options"] == {"expires": 5}
    assert "check-redis" not in beat_schedule(serves_registers=False, reconcile_interval=150)


def test_a_flush_after_redis_came_back_empty_queues_a_recovery_full_sync_and_the_register_arrives(
    api: APIClient,
    coordination_redis: RedisServer,
    peer_service: Any,
    worker: object,
    published_tasks: list[tuple[str, dict[str, Any]]],
) -> None:
    # given: a register whose push Redis lost (noted, then Redis restarted empty before the flush)
    push_recovery.mark_carried()
    lost = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]
    coordination_redis.stop()
    coordination_redis.start()

    # when: the next change's flush runs
    kept = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]

    # then: it queued a recovery full sync, which carried the lost change too
    wait_until(lambda: RECOVERY in published_tasks, timeout=30, message="a recovery full sync queued")
    wait_until(
        lambda: {lost, kept} <= {ad["registerId"] for ad in peer_service.available()},
        timeout=30,
        message="both registers advertised",
    )
