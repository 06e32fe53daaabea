"""The spec's edge cases, on a node made of real processes."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from tests.databases import database_errors
from tests.system.conftest import MakeNode
from tests.system.harness import SystemNode, wait_for

pytestmark = pytest.mark.system

STARTUP_RETRY = "event=full_sync_failed reason=startup will_retry=true"


def test_a_register_service_started_before_the_peer_service_retries_with_backoff_until_it_is_reachable(
    make_node: MakeNode,
) -> None:
    # given: the Register Service, worker and beat run; the Peer Service does not yet
    node = make_node("a")
    node.start("register", "worker", "beat")
    public = {node.create_register("early-1"), node.create_register("early-2")}
    node.create_register("early-private", advertise=False)

    def retrying() -> dict[str, Any] | None:
        state = node.sync_state()
        failed_twice = node.log_count("worker", STARTUP_RETRY) >= 2 and state["consecutiveFailures"] >= 2
        return state if failed_twice and state["status"] == "retrying" else None

    state = wait_for(retrying, [node], message="the startup full sync never retried")
    assert "could not connect" in state["lastError"]

    # when
    node.start("peer")

    # then
    node.wait_available(public, timeout=60)
    wait_for(lambda: node.sync_state()["status"] == "success", [node], message="the sync state never recovered")
    assert node.sync_state()["consecutiveFailures"] == 0


def test_while_redis_is_down_the_peer_service_serves_from_memory_and_persists_again_when_it_returns(
    make_node: MakeNode,
) -> None:
    # given
    node = make_node("a")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(3)}
    node.wait_available(public)
    made_private = sorted(public)[0]

    # when: Redis (the store and the broker) goes away; registers still change
    node.redis.stop()
    wait_for(lambda: node.store_status()["store"] == "degraded", [node], message="the store never degraded")
    assert node.available_ids() == public  # served from memory
    assert requests.get(f"{node.peer_url}/readyz", timeout=5).json()["store"] == "degraded"
    created = node.create_register("created-during-outage")  # saved; its push is deferred
    node.set_advertise(made_private, False)
    assert node.available_ids() == public

    # ...and Redis comes back (empty: it persists nothing)
    node.redis.start()

    # then: the store recovers by itself and the node converges from the database
    expected = (public - {made_private}) | {created}
    wait_for(lambda: node.store_status()["store"] == "ok", [node], message="the store never recovered")
    node.wait_available(expected, timeout=30)
    wait_for(lambda: node.redis_local_ids() == expected, [node], message="Redis never held the exact set again")
    assert node.db_public_ids() == expected


def test_a_register_deleted_while_both_services_run_is_unadvertised_at_once_and_gone_from_redis(
    make_node: MakeNode,
) -> None:
    # given: no beat, so no reconciliation: only the push on delete can remove it
    node = make_node("a")
    node.start("peer", "register", "worker")
    public = {node.create_register(f"public-{n}") for n in range(3)}
    node.wait_available(public)
    deleted = sorted(public)[0]

    # when
    node.delete_register(deleted)

    # then
    node.wait_available(public - {deleted}, timeout=5)
    assert node.redis_local_ids() == public - {deleted}
    assert node.log_count("worker", "event=full_sync_succeeded reason=periodic") == 0


def test_500_public_registers_are_re_advertised_on_startup_without_overwhelming_the_peer_service(
    make_node: MakeNode,
) -> None:
    # given: 500 public (and 50 private) registers the Peer Service has never heard of
    node = make_node("a")
    public, _private = node.insert_registers(public=500, private=50)
    node.start("peer")
    latencies: list[float] = []
    failures: list[str] = []
    stop_polling = threading.Event()

    def poll_peer() -> None:
        while not stop_polling.is_set():
            started = time.monotonic()
            try:
                response = node.api("GET", "/api/registers/available")
                if response.status_code != 200:
                    failures.append(f"HTTP {response.status_code}")
            except requests.RequestException as exc:
                failures.append(repr(exc))
            latencies.append(time.monotonic() - started)

    poller = threading.Thread(target=poll_peer)
    poller.start()
    try:
        # when: the Register Service starts (no beat: the startup full sync does it)
        node.start("register", "worker")
        node.wait_available(public, timeout=30)
    finally:
        stop_polling.set()
        poller.join()

    # then
    state = wait_for(node.succeeded_sync_state, [node], message="the startup full sync never recorded its success")
    assert (state["reason"], state["registersPushed"], state["added"]) == ("startup", 500, 500)
    assert failures == []
    assert max(latencies) < 2.0


def test_a_rolling_deployment_restarting_one_process_at_a_time_while_registers_change_converges(
    make_node: MakeNode,
) -> None:
    # given
    node = make_node("a")
    node.start()
    for n in range(4):
        node.create_register(f"before-{n}", advertise=n % 2 == 0)
    changes = Changes(node)
    changes.start()

    # when: each process in turn is stopped and started again while registers keep changing
    try:
        for service in ("peer", "register", "worker", "beat"):
            changes.wait_for_more(3)
            node.restart(service)
        changes.wait_for_more(3)
    finally:
        changes.stop()

    # then: nothing created was lost, and the Peer Service lists exactly the public ones
    surviving = changes.created - changes.deleted
    assert surviving <= node.db_ids()
    assert not changes.deleted & node.db_ids()
    node.wait_available(node.db_public_ids(), timeout=60)
    assert node.available_ids() == node.db_public_ids()
    assert len(changes.created) >= 10


class Changes(threading.Thread):
    """Creates, flips and deletes registers through the Register API; failures (the web restarting) are skipped."""

    def __init__(self, node: SystemNode) -> None:
        super().__init__(daemon=True)
        self.node = node
        self.created: set[str] = set()
        self.deleted: set[str] = set()
        self.done = 0
        self._halt = threading.Event()
        self._progress = threading.Condition()

    def run(self) -> None:
        step = 0
        while not self._halt.is_set():
            step += 1
            try:
                self.change(step)
            except (requests.RequestException, AssertionError, *database_errors()):
                time.sleep(0.05)  # the Register web is restarting: try the next change
                continue
            with self._progress:
                self.done += 1
                self._progress.notify_all()

    def change(self, step: int) -> None:
        node = self.node
        if step % 4 == 3 and self.created - self.deleted:
            victim = sorted(self.created - self.deleted)[step % len(self.created - self.deleted)]
            node.delete_register(victim)
            self.deleted.add(victim)
        elif step % 4 == 2 and self.created - self.deleted:
            flipped = sorted(self.created - self.deleted)[0]
            node.set_advertise(flipped, flipped not in node.db_public_ids())
        else:
            self.created.add(node.create_register(f"rolling-{step}", advertise=step % 3 != 0))

    def wait_for_more(self, count: int) -> None:
        with self._progress:
            target = self.done + count
            assert self._progress.wait_for(lambda: self.done >= target, timeout=30), "registers stopped changing"

    def stop(self) -> None:
        self._halt.set()
        self.join()
