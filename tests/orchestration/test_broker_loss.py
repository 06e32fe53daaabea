"""Broker lost under a worker that holds a countdown task: the worker survives, reconnects and goes on.

A real `celery -A sorcha_site worker` consumes from a redis-server of this test's own, reached either
directly (`redis://`) or through a Redis Sentinel (`sentinel://`, as REDIS_SENTINELS configures it).
The worker holds a coalesced push flush (`countdown`) unacknowledged when that redis-server is
SIGKILLed, as a crashed or OOM-killed broker container goes: no goodbye on the socket. The broker then
comes back on the same port. The same worker process must still be running, reconnect, and run a task
sent after the restart.
"""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import redis

from peers.store import AdvertisementStore
from registers import task_names
from sorcha_site.celery import app as celery_app
from tests.helpers import wait_until
from tests.orchestration.processes import NodeProcess, node_env, worker_command
from tests.redis_server import RedisServer
from tests.tcp_proxy import port_outside_the_ephemeral_range

pytestmark = pytest.mark.django_db(transaction=True)

SENTINEL_SERVICE = "sorcha-broker-loss"


@dataclass
class Broker:
    server: RedisServer
    # What the worker's environment says to reach it.
    env: dict[str, str] = field(default_factory=dict)

    def kill_hard(self) -> None:
        """SIGKILL the redis-server (RedisServer.stop sends SIGTERM, which closes its clients' sockets cleanly)."""
        assert self.server.process is not None
        self.server.process.kill()
        self.server.process.wait()


def start_sentinel(server: RedisServer) -> tuple[subprocess.Popen[bytes], str]:
    """One sentinel watching `server` and its host:port; it never declares `server` down within a test."""
    port = port_outside_the_ephemeral_range()
    config = server.workdir / "sentinel.conf"
    config.write_text(
        f"port {port}\nbind 127.0.0.1\ndir {server.workdir}\nsentinel resolve-hostnames no\n"
        f"sentinel monitor {SENTINEL_SERVICE} 127.0.0.1 {server.port} 1\n"
        f"sentinel down-after-milliseconds {SENTINEL_SERVICE} 60000\n"
    )
    binary = shutil.which("redis-server")
    assert binary is not None, "redis-server is not installed"
    process = subprocess.Popen([binary, str(config), "--sentinel"], stdout=subprocess.DEVNULL)
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=2)
    wait_until(lambda: client.sentinel_get_master_addr_by_name(SENTINEL_SERVICE), message="the sentinel up")
    return process, f"127.0.0.1:{port}"


@pytest.fixture(params=["redis", "sentinel"])
def broker(request: pytest.FixtureRequest) -> Iterator[Broker]:
    # Below the ephemeral range: the worker keeps connecting to the dead port, and one of its attempts
    # could otherwise draw that port as its source and connect to itself, keeping the broker from coming back.
    server = RedisServer(port=port_outside_the_ephemeral_range())
    server.start()
    if request.param == "redis":
        yield Broker(server, {"CELERY_BROKER_URL": server.broker_url()})
    else:
        # As a Sentinel deployment runs: the broker and the node's Redis are both the service's primary.
        sentinel, address = start_sentinel(server)
        yield Broker(
            server, {"REDIS_SENTINELS": address, "REDIS_SENTINEL_SERVICE": SENTINEL_SERVICE, "CELERY_BROKER_URL": ""}
        )
        sentinel.kill()
        sentinel.wait()
    server.stop()


def send(broker: Broker, queue: str, name: str, **options: Any) -> str:
    """Publish a task straight to the broker's redis-server, on the worker's queue; returns the task id."""
    task_id = uuid.uuid4().hex
    with celery_app.connection_for_write(broker.server.broker_url()) as connection:
        celery_app.send_task(name, task_id=task_id, connection=connection, queue=queue, **options)
    return task_id


def alive_and_logged(worker: NodeProcess, text: str) -> bool:
    assert worker.process.poll() is None, f"the worker exited ({worker.process.returncode}):\n{worker.log()[-4000:]}"
    return text in worker.log()


def test_a_worker_holding_a_countdown_task_survives_a_killed_broker_and_runs_tasks_after_its_restart(
    broker: Broker, peer_service: AdvertisementStore, live_server: Any, node_processes: Any
) -> None:
    # given: a worker holding a flush scheduled minutes ahead (unacknowledged until it runs)
    prefix = f"broker-loss-{uuid.uuid4().hex[:8]}"
    queue = f"{prefix}.registers"
    worker: NodeProcess = node_processes(
        "worker", worker_command("broker-loss"), node_env(live_server.url, prefix=prefix, **broker.env)
    )
    wait_until(lambda: alive_and_logged(worker, " ready."), timeout=30, message="the worker ready")
    held = send(
        broker,
        queue,
        task_names.FLUSH_PUSHES,
        kwargs={"chain": uuid.uuid4().hex, "requested_at": time.time()},
        countdown=600,
    )
    wait_until(lambda: alive_and_logged(worker, f"[{held}] received"), timeout=15, message="the flush received")

    # when: the broker dies abruptly, then comes back on the same port
    broker.kill_hard()
    wait_until(lambda: alive_and_logged(worker, "Connection to broker lost"), timeout=15, message="the loss noticed")
    broker.server.start()

    # then: the same worker process reconnects and runs a task sent after the restart
    sent_after = send(broker, queue, task_names.CHECK_PUSHES)
    wait_until(
        lambda: alive_and_logged(worker, f"[{sent_after}] succeeded"),
        timeout=20,
        message="the task sent after the restart run",
    )
    assert worker.process.poll() is None
