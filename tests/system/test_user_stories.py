"""Every acceptance scenario of user stories 1-4, on nodes made of real processes.

Each test checks the exact set of register ids the Peer Service lists, never just a count.
"""

from __future__ import annotations

import threading
from datetime import datetime

import pytest
import requests

from tests.system.conftest import MakeNode
from tests.system.harness import now, wait_for

pytestmark = pytest.mark.system


# ------------------------------------------------------------------ user story 1: survive a Peer restart
def test_us1_1_five_public_registers_reappear_within_30_s_of_the_peer_service_being_healthy_again(
    make_node: MakeNode,
) -> None:
    # given: 5 public registers, advertised
    node = make_node("a")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(5)}
    node.wait_available(public)

    # when
    node.restart("peer")  # returns once /healthz answers

    # then
    node.wait_available(public, timeout=30, message="after the Peer Service restarted, the list")


def test_us1_2_a_register_created_with_advertise_false_does_not_appear_after_the_peer_restarts(
    make_node: MakeNode,
) -> None:
    # given
    node = make_node("a")
    node.start()
    public = {node.create_register("public-1"), node.create_register("public-2")}
    private = node.create_register("private", advertise=False)
    node.wait_available(public)

    # when
    restarted_at = now()
    node.restart("peer")

    # then: also after a full sync has reverified the loaded list
    node.wait_available(public)
    node.wait_full_sync_after(restarted_at)
    assert node.available_ids() == public
    assert private in node.db_ids()


def test_us1_3_a_register_made_private_just_before_the_peer_restarts_is_not_advertised(make_node: MakeNode) -> None:
    # given
    node = make_node("a")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(3)}
    node.wait_available(public)
    made_private = sorted(public)[0]

    # when: the flag changes, and the Peer Service restarts straight away
    node.set_advertise(made_private, False)
    restarted_at = now()
    node.restart("peer")

    # then
    node.wait_available(public - {made_private})
    node.wait_full_sync_after(restarted_at)
    assert node.available_ids() == public - {made_private}
    assert made_private in node.db_ids() - node.db_public_ids()


# ------------------------------------------------------------------ user story 2: the Register Service re-advertises
def test_us2_1_a_starting_register_service_advertises_the_3_public_registers_of_its_database(
    make_node: MakeNode,
) -> None:
    # given: 3 public registers in the database that were never pushed (rows written straight in)
    node = make_node("a")
    public, _private = node.insert_registers(public=3, private=1)
    node.start("peer")

    # when: the Register Service starts (no beat: only the startup full sync can push them)
    node.start("register", "worker")

    # then
    node.wait_available(public, timeout=60)
    state = wait_for(node.succeeded_sync_state, [node], message="the startup full sync never recorded its success")
    assert (state["reason"], state["registersPushed"]) == ("startup", 3)


def test_us2_2_a_register_service_that_starts_while_the_peer_is_unreachable_retries_until_it_succeeds(
    make_node: MakeNode,
) -> None:
    # given: the startup full sync has failed at least once
    node = make_node("a")
    public, _private = node.insert_registers(public=3, private=1)
    node.start("register", "worker")
    wait_for(
        lambda: node.sync_state()["status"] == "retrying" and node.sync_state()["consecutiveFailures"] >= 1,
        [node],
        message="the startup full sync never failed and retried",
    )

    # when
    node.start("peer")

    # then
    node.wait_available(public, timeout=60)
    state = wait_for(node.succeeded_sync_state, [node], message="the startup full sync never recorded its success")
    assert (state["reason"], state["consecutiveFailures"]) == ("startup", 0)


def test_us2_3_a_register_deleted_while_the_peer_was_down_is_not_advertised_once_both_run(make_node: MakeNode) -> None:
    # given
    node = make_node("a")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(3)}
    node.wait_available(public)
    deleted = sorted(public)[0]

    # when
    node.stop("peer")
    node.delete_register(deleted)
    node.start("peer")
    back_at = now()

    # then
    node.wait_available(public - {deleted})
    node.wait_full_sync_after(back_at)
    assert node.available_ids() == public - {deleted}
    assert node.redis_local_ids() == public - {deleted}
    assert deleted not in node.db_ids()


# ------------------------------------------------------------------ user story 3: periodic reconciliation
def test_us3_1_an_advertisement_lost_from_the_peer_service_is_restored_by_the_next_reconciliation(
    make_node: MakeNode,
) -> None:
    # given: reconciliation held back (beat paused), and one public register's advertisement lost
    node = make_node("a")
    node.start()
    public = {node.create_register("kept"), node.create_register("lost")}
    node.wait_available(public)
    lost = sorted(public)[0]
    node.pause("beat")

    def lose_it() -> bool:  # again, should a sync already in flight have put it back
        assert node.api("DELETE", f"/api/registers/{lost}/advertise").status_code == 204
        return node.available_ids() == public - {lost} and lost not in node.redis_local_ids()

    wait_for(lose_it, [node], message="the advertisement was never removed")

    # when
    node.resume("beat")

    # then: restored within the reconciliation interval (1 s here; generous bound)
    node.wait_available(public, timeout=10)
    assert node.redis_local_ids() == public


def test_us3_2_a_register_made_private_behind_the_push_path_is_unadvertised_by_reconciliation(
    make_node: MakeNode,
) -> None:
    # given
    node = make_node("a")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(3)}
    node.wait_available(public)
    made_private = sorted(public)[0]
    flush_key = f"{node.prefix}:registers:push:flush"
    redis = node.redis.client()
    wait_for(lambda: not redis.exists(flush_key), [node], timeout=30, message="the pushes of the creations done")

    # when: QuerySet.update() bypasses the push signals, so only reconciliation can notice
    node.manage(
        "shell",
        "-c",
        "from django.utils import timezone\n"
        "from registers.models import Register\n"
        f"Register.objects.filter(pk={made_private!r}).update(advertise=False, updated_at=timezone.now())\n",
    )

    # then: no push was scheduled (a noted change holds the flush key for a window and more)...
    assert not redis.exists(flush_key)
    redis.close()
    # ...and reconciliation removed it
    node.wait_available(public - {made_private}, timeout=10)
    assert node.redis_local_ids() == public - {made_private}


def test_us3_3_reconciliation_of_a_correct_state_changes_nothing(make_node: MakeNode) -> None:
    # given: every register correctly advertised and a reconciliation that found nothing to do
    node = make_node("a")
    node.start()
    public = {node.create_register(f"public-{n}") for n in range(3)}
    node.wait_available(public)
    steady = {"added": 0, "updated": 0, "removed": 0, "held": 0, "unchanged": 3}

    def counts(state: dict[str, object]) -> dict[str, object]:
        return {name: state[name] for name in steady}

    wait_for(lambda: counts(node.sync_state()) == steady, [node], message="no idle reconciliation")
    stored = node.redis_local_values()
    rows = {row["registerId"]: {**row, "lastSeen": None} for row in node.available()}

    # when: three more reconciliations run
    seen = []
    for _ in range(3):
        seen.append(node.wait_full_sync_after(node.last_success_at() or now()))

    # then: each one found every register unchanged, and nothing stored or listed changed
    assert [counts(state) for state in seen] == [steady] * 3
    assert node.redis_local_values() == stored
    assert {row["registerId"]: {**row, "lastSeen": None} for row in node.available()} == rows


# ------------------------------------------------------------------ user story 4: a remote peer's view
def test_us4_1_node_b_lists_node_a_public_registers_with_a_peer_count(make_node: MakeNode) -> None:
    # given: node A with 2 public registers (and a private one), node B seeded with A
    node_a = make_node("a")
    node_b = make_node("b", seeds=(node_a,))
    node_a.start()
    public = {node_a.create_register("alpha"), node_a.create_register("beta")}
    node_a.create_register("hidden", advertise=False)
    node_b.start()

    # when / then
    node_b.wait_available(public, local=False, nodes=[node_a, node_b], message="B's remote registers")
    rows = [row for row in node_b.available() if row["registerId"] in public]
    assert all(row["peerCount"] >= 1 and not row["isLocal"] for row in rows)
    assert node_b.available_ids() == public
    assert node_a.available_ids(local=False) == set()


def test_us4_2_node_b_keeps_listing_node_a_registers_while_node_a_restarts(make_node: MakeNode) -> None:
    # given: B sees A's registers; the TTL outlasts a restart of A's four processes
    timing = {"ADVERTISEMENT_TTL": "15"}
    node_a = make_node("a", **timing)
    node_b = make_node("b", seeds=(node_a,), **timing)
    node_a.start()
    public = {node_a.create_register("steady-1"), node_a.create_register("steady-2")}
    node_b.start()
    node_b.wait_available(public, local=False, nodes=[node_a, node_b])

    gaps: list[set[str]] = []
    stop_polling = threading.Event()

    def poll_b() -> None:
        while not stop_polling.is_set():
            try:
                seen = node_b.available_ids(local=False)
            except requests.RequestException as exc:
                seen = {repr(exc)}
            if seen != public:
                gaps.append(seen)

    poller = threading.Thread(target=poll_b)
    poller.start()
    try:
        # when: every process of A stops, then all start again
        node_a.stop_all()
        restarted_at = now()
        node_a.start()
        # then: A resyncs its own list, and B has heard from the restarted A
        node_a.wait_full_sync_after(restarted_at)

        def b_heard_a_again() -> bool:
            peer = next(p for p in node_b.peers() if p["url"] == node_a.peer_url)
            return bool(peer["lastSeen"]) and datetime.fromisoformat(peer["lastSeen"]) > restarted_at

        wait_for(b_heard_a_again, [node_a, node_b], message="B never heard from the restarted A")
    finally:
        stop_polling.set()
        poller.join()

    assert gaps == []
    assert node_b.available_ids(local=False) == public
