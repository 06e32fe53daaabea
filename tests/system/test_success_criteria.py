"""The spec's success criteria as behaviour, with generous bounds, on nodes made of real processes."""

from __future__ import annotations

import pytest

from tests.system import start_orders
from tests.system.conftest import MakeNode
from tests.system.harness import wait_for

pytestmark = pytest.mark.system


def test_sc001_after_every_process_and_redis_stop_and_start_all_public_registers_are_visible(
    make_node: MakeNode,
) -> None:
    # given: public registers created through the API and written straight into the database
    node = make_node("a")
    bulk_public, _bulk_private = node.insert_registers(public=10, private=10)
    node.start()
    public = bulk_public | {node.create_register("api-1"), node.create_register("api-2")}
    node.create_register("api-private", advertise=False)
    node.wait_available(public)

    # when: the whole node goes down, Redis included (it persists nothing), and comes back
    node.stop_all()
    node.redis.stop()
    node.redis.start()
    node.start()

    # then
    node.wait_available(public, timeout=60)


def test_sc002_a_restarted_peer_service_serves_its_list_from_redis_within_5_s_while_no_worker_runs(
    make_node: MakeNode,
) -> None:
    # given: advertised registers, then no worker (nothing can push them again); a TTL longer than the test;
    # two Peer web workers, as deployed, each loading the pool on its own
    node = make_node("a", web_workers=2, ADVERTISEMENT_TTL="30")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(4)}
    node.wait_available(public)
    wait_for(lambda: all(row["verified"] for row in node.available()), [node], message="never verified")
    node.stop("worker")

    # when
    node.restart("peer")  # returns once /healthz answers

    # then: the list is back from Redis, unverified until its source refreshes it
    node.wait_available(public, timeout=5, message="SC-002: the list within 5 s of the restart")
    assert [row["verified"] for row in node.available()] == [False] * 4
    assert not node.running("worker")

    # ...and is verified again once the Register Service's worker runs
    node.start("worker")
    wait_for(lambda: all(row["verified"] for row in node.available()), [node], message="never re-verified")
    assert node.available_ids() == public


def test_sc003_a_register_created_while_the_peer_service_is_down_is_listed_soon_after_it_is_back(
    make_node: MakeNode,
) -> None:
    # given
    node = make_node("a")
    node.start()
    existing = node.create_register("existing")
    node.wait_available({existing})
    node.stop("peer")

    # when
    created = node.create_register("created-while-down")
    node.create_register("private-while-down", advertise=False)
    node.start("peer")

    # then
    node.wait_available({existing, created}, timeout=30)


@pytest.mark.parametrize("order", start_orders.ORDERS, ids=start_orders.order_id)
def test_sc006_a_node_started_in_any_order_after_redis_converges(make_node: MakeNode, order: tuple[str, ...]) -> None:
    start_orders.SAMPLED = True
    # given: registers in the database before anything starts
    node = make_node("a")
    public, _private = node.insert_registers(public=3, private=2)

    # when: the four services start one after the other, each once the previous one is up
    created = set()
    for service in order:
        node.start(service)
        if service == "register":  # a change made as soon as the Register API answers
            created.add(node.create_register("while-starting"))
            node.create_register("private-while-starting", advertise=False)

    # then
    node.wait_available(
        public | created,
        timeout=60,
        message=f"start order {' > '.join(order)} (seed {start_orders.SEED}): the list",
    )
