"""The beat schedule and the queues: what a node runs periodically, and which worker runs it."""

from __future__ import annotations

import subprocess
import sys

from django.conf import settings

from registers import task_names
from sorcha_site.celery import app as celery_app
from tasks.schedule import beat_schedule
from tests.orchestration.processes import ROOT, node_env


def test_every_beat_entry_expires_so_no_backlog_piles_up() -> None:
    # when
    schedule = settings.CELERY_BEAT_SCHEDULE

    # then
    assert schedule
    assert all(entry["options"]["expires"] > 0 for entry in schedule.values())


def test_beat_runs_a_periodic_full_sync_every_reconcile_interval() -> None:
    # when
    entry = beat_schedule(serves_registers=True, reconcile_interval=42.0)["reconcile-advertisements"]

    # then
    assert (entry["task"], entry["schedule"], entry["kwargs"]) == (task_names.FULL_SYNC, 42.0, {"reason": "periodic"})
    assert entry["options"]["expires"] == 42.0


def test_a_node_without_the_register_service_schedules_no_full_sync() -> None:
    assert beat_schedule(serves_registers=False, reconcile_interval=150.0) == {}


def test_register_service_tasks_go_to_the_register_queue() -> None:
    # when
    queues = {
        name: celery_app.amqp.router.route({}, name)["queue"].name
        for name in task_names.__dict__.values()
        if isinstance(name, str) and name.startswith("registers.")
    }

    # then
    assert set(queues.values()) == {f"{settings.REDIS_KEY_PREFIX}.registers"}


def test_a_peer_only_worker_does_not_consume_the_register_queue() -> None:
    # given
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(' '.join(q.name for q in settings.CELERY_TASK_QUEUES))"
    )
    env = node_env(
        "http://127.0.0.1:9",
        REDIS_KEY_PREFIX="node",
        SORCHA_SERVICE="peer",
        DJANGO_SETTINGS_MODULE="sorcha_site.settings",
    )

    # when
    completed = subprocess.run(
        [sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=True
    )

    # then
    assert completed.stdout.split() == ["node.default", "node.peers"]


def test_a_peer_service_node_gossips_every_gossip_interval_and_runs_expire() -> None:
    entry = beat_schedule(serves_registers=False, reconcile_interval=150.0, serves_peers=True, gossip_interval=7.0)[
        "gossip-round"
    ]

    assert entry["task"] == "peers.gossip_round"
    assert entry["schedule"] == 7.0
    assert entry["options"]["expires"] == 7.0
