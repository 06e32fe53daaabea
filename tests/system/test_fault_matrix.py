"""Faults at bad moments: nothing public is lost, nothing private appears, the database keeps every register.

The moment of each SIGKILL is drawn from a seed shown in any failure; `SORCHA_FAULT_SEED=<n>` repeats it.
"""

from __future__ import annotations

import os
import random
import time
from datetime import datetime

import pytest

from tests.system.conftest import MakeNode
from tests.system.harness import SERVICES, wait_for

pytestmark = pytest.mark.system

REGISTERS = 2_000
CHUNK = 50  # items per bulk request, so a full sync of 2,000 is 40 requests long
# The kill comes after a random number of those requests, leaving a few so it surely lands mid-sync.
KILL_AFTER_REQUESTS = range(1, REGISTERS // CHUNK - 5)
# A killed worker's full-sync lease lives one request's timeouts plus 30 s (registers/sync_lock.py),
# so short timeouts keep the wait for it short; the sync's requests are small enough for them.
FAST_TIMEOUTS = {"PEER_SERVICE_CONNECT_TIMEOUT": "0.5", "PEER_SERVICE_READ_TIMEOUT": "2"}


@pytest.mark.parametrize("victim", SERVICES)
def test_a_process_killed_during_a_full_sync_of_2000_registers_converges_to_exactly_the_public_set(
    make_node: MakeNode, victim: str
) -> None:
    # given: 2,000 public registers (and 100 private) the Peer Service has never heard of
    seed = int(os.environ.get("SORCHA_FAULT_SEED") or random.SystemRandom().randrange(1_000_000))
    node = make_node("a", SORCHA_BULK_MAX_ITEMS=str(CHUNK), **FAST_TIMEOUTS)
    public, private = node.insert_registers(public=REGISTERS, private=100)
    node.start("peer", "register", "beat")

    # when: the worker starts its startup full sync, and the victim is SIGKILLed part-way through it
    kill_after = random.Random(seed).choice(KILL_AFTER_REQUESTS) * CHUNK
    node.start("worker", wait=False)
    applied = wait_for(
        lambda: (count := node.store_status()["localAdvertisements"]) >= kill_after and count,
        [node],
        timeout=60,
        interval=0.002,  # a request of the sync takes some 20 ms: look between every two
        message="the startup full sync never started",
    )
    node.kill(victim)
    context = f"(seed {seed}: {victim} killed with {applied} of {REGISTERS} applied)"
    assert applied < REGISTERS, f"the full sync ended before the kill {context}"

    # then: once the victim is back, exactly the public set, and every register still in the database
    node.start(victim)
    node.wait_available(public, timeout=90, message=f"after the kill {context}, the list")
    assert node.redis_local_ids() == public
    assert node.db_ids() == public | private


def test_redis_restarted_empty_mid_run_converges_from_the_database_without_an_operator(make_node: MakeNode) -> None:
    # given
    node = make_node("a")
    bulk_public, _bulk_private = node.insert_registers(public=200, private=20)
    node.start()
    public = bulk_public | {node.create_register("api-public")}
    node.create_register("api-private", advertise=False)
    node.wait_available(public)

    # when
    run_id = node.redis.client().info("server")["run_id"]
    node.redis.restart_empty()
    # A new server that loaded nothing. (Not "Redis holds no ad now": the Peer web may already be writing back.)
    restarted = node.redis.client().info()
    assert restarted["run_id"] != run_id
    assert restarted["rdb_last_load_keys_loaded"] == 0

    # then
    node.wait_available(public, timeout=30)
    wait_for(lambda: node.redis_local_ids() == public, [node], message="Redis never held the public set again")
    wait_for(lambda: node.store_status()["store"] == "ok", [node], message="the store never recovered")


def test_a_peer_service_down_longer_than_the_ttl_converges_when_it_returns_and_no_register_is_lost(
    make_node: MakeNode,
) -> None:
    # given
    node = make_node("a")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(4)}
    private = node.create_register("private", advertise=False)
    node.wait_available(public)
    made_private, deleted = sorted(public)[:2]

    # when: the Peer Service is down while registers change, until every advertisement has expired in Redis
    node.stop("peer")
    created = node.create_register("created-while-down")
    node.set_advertise(made_private, False)
    node.delete_register(deleted)
    # (their TTL runs from their last refresh, at most one reconciliation interval before the stop)
    wait_for(lambda: node.redis_local_ids() == set(), [node], message="the advertisements never expired")
    node.start("peer")

    # then
    expected = (public - {made_private, deleted}) | {created}
    node.wait_available(expected, timeout=30)
    assert node.db_public_ids() == expected
    assert node.db_ids() == expected | {made_private, private}


def test_node_b_keeps_node_a_registers_until_the_ttl_after_a_is_killed_and_lists_them_again_when_a_returns(
    make_node: MakeNode,
) -> None:
    # given: B lists A's public registers
    node_a = make_node("a")
    node_b = make_node("b", seeds=(node_a,))
    node_a.start()
    public = {node_a.create_register("from-a-1"), node_a.create_register("from-a-2")}
    node_a.create_register("private-of-a", advertise=False)
    node_b.start()
    node_b.wait_available(public, local=False, nodes=[node_a, node_b])

    # when: every process of A is killed
    for service in SERVICES:
        node_a.kill(service)
    killed_at = time.time()

    # then: B keeps exactly A's registers until they are a TTL old, then drops them all
    last_seen = 0.0
    while (rows := [row for row in node_b.available() if not row["isLocal"]]) and time.time() < killed_at + 30:
        assert {row["registerId"] for row in rows} == public
        last_seen = max(datetime.fromisoformat(row["lastSeen"]).timestamp() for row in rows)
        time.sleep(0.05)
    dropped_at = time.time()
    assert rows == [], "B never dropped A's registers"
    assert last_seen + 4 - 0.5 <= dropped_at <= last_seen + 4 + 2.5  # ADVERTISEMENT_TTL = 4 s
    assert dropped_at - killed_at >= 1.0

    # when: A is back
    node_a.start()

    # then
    node_b.wait_available(public, local=False, timeout=30, nodes=[node_a, node_b])
    assert node_a.available_ids() == public
