"""Pushes reach the Peer Service over real HTTP: what they carry, coalescing, retries, give-up, refusals."""

from __future__ import annotations

import logging
import time
from datetime import timedelta
from typing import Any

import pytest
from celery.signals import task_failure, task_retry
from django.utils import timezone
from rest_framework.test import APIClient

from peers.store import AdvertisementInput, AdvertisementStore, to_micros
from registers import pending_pushes, pushes, task_names
from registers.models import Register
from registers.peer_client import PeerServiceClient, PeerServiceRejected, PeerServiceUnavailable
from registers.pending_pushes import FlushKey
from registers.push_delivery import push_changes
from tasks import tasks
from tests.helpers import wait_until
from tests.orchestration.conftest import PendingChanges
from tests.orchestration.peer_server import LatePeerService
from tests.registers.factories import make_register, register_body
from tests.test_metrics import scrape

pytestmark = pytest.mark.django_db(transaction=True)


class TaskEvents:
    """Retries and failures of tasks run by the embedded worker (it runs in this process)."""

    def __init__(self) -> None:
        self.retries: list[str] = []
        self.failures: list[str] = []

    def on_retry(self, sender: Any = None, **_: Any) -> None:
        self.retries.append(sender.name)

    def on_failure(self, sender: Any = None, **_: Any) -> None:
        self.failures.append(sender.name)


@pytest.fixture
def task_events() -> Any:
    events = TaskEvents()
    task_retry.connect(events.on_retry, weak=False)
    task_failure.connect(events.on_failure, weak=False)
    yield events
    task_retry.disconnect(events.on_retry)
    task_failure.disconnect(events.on_failure)


# --------------------------------------------------------------------------- what a push carries
def test_a_push_of_a_public_register_sends_its_fields_stamped_with_updated_at(
    peer_service: AdvertisementStore,
) -> None:
    # given
    register = make_register(advertise=True, name="ledger", latest_version=7, latest_docket_version=3)

    # when
    result = push_changes([register.id], {})

    # then
    assert result.counts["added"] == 1
    entry = peer_service.local_advertisement(register.id)
    assert entry is not None
    assert entry.fields["name"] == "ledger"
    assert (entry.fields["latestVersion"], entry.fields["latestDocketVersion"]) == (7, 3)
    assert entry.source_updated_at == to_micros(register.updated_at)


def test_a_push_of_a_private_register_removes_its_advertisement(peer_service: AdvertisementStore) -> None:
    # given
    register = make_register(advertise=True)
    push_changes([register.id], {})
    Register.objects.filter(pk=register.pk).update(advertise=False, updated_at=timezone.now())

    # when
    result = push_changes([register.id], {})

    # then
    assert result.counts["removed"] == 1
    assert peer_service.local_advertisement(register.id) is None


def test_the_removal_of_a_deleted_register_refuses_an_older_push_arriving_after_it(
    peer_service: AdvertisementStore,
) -> None:
    # given: a register pushed, then deleted
    register = make_register(advertise=True)
    register_id, updated_at = register.id, register.updated_at
    push_changes([register_id], {})
    register.delete()
    push_changes([register_id], {register_id: timezone.now()})

    # when: a push of the state before the deletion arrives late
    result, _ = peer_service.advertise(
        AdvertisementInput(register_id, True, name=register.name, source_updated_at=to_micros(updated_at))
    )

    # then
    assert result.stale == 1
    assert peer_service.local_advertisement(register_id) is None


# ------------------------------------------------------------------------------ through a worker
def test_a_register_created_public_through_the_api_appears_in_available_registers(
    peer_service: AdvertisementStore, worker: object, api: APIClient, live_server: Any
) -> None:
    # when
    response = api.post("/api/registers/", register_body(name="pushed-at-once", advertise=True), format="json")

    # then
    register_id = response.json()["id"]
    wait_until(
        lambda: register_id in {row["registerId"] for row in api.get("/api/registers/available").json()},
        timeout=10,
        message="the new public register in /api/registers/available",
    )


def test_turning_advertise_off_through_the_api_removes_the_advertisement(
    peer_service: AdvertisementStore, worker: object, api: APIClient
) -> None:
    # given
    register_id = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]
    wait_until(lambda: peer_service.local_advertisement(register_id), timeout=10)

    # when
    api.patch(f"/api/registers/{register_id}/", {"advertise": False}, format="json")

    # then
    wait_until(lambda: peer_service.local_advertisement(register_id) is None, timeout=10, message="removal")


def test_a_push_made_while_the_peer_service_was_down_lands_after_it_comes_back_without_a_full_sync(
    late_peer_service: LatePeerService,
    peer_store: AdvertisementStore,
    worker: object,
    task_events: TaskEvents,
    api: APIClient,
) -> None:
    # given: the Peer Service is down when the register is created, and its flush has failed once
    register = make_register(advertise=True)
    wait_until(lambda: task_events.retries, timeout=10, message="a failed push attempt")
    # ...and another change arrives while the flush waits to retry
    later = make_register(advertise=True)

    # when
    late_peer_service.start()

    # then: the retried flush carries both
    wait_until(
        lambda: peer_store.local_advertisement(register.id) and peer_store.local_advertisement(later.id),
        timeout=15,
        message="the retried flush",
    )
    assert peer_store.status()["lastFullSync"] is None
    assert set(task_events.retries) == {task_names.FLUSH_PUSHES}
    assert scrape(api)[("sorcha_push_retries_total", ())] >= 1


def test_a_push_refused_with_a_4xx_is_not_retried_and_the_answer_is_logged(
    peer_service: AdvertisementStore, worker: object, task_events: TaskEvents, caplog: pytest.LogCaptureFixture
) -> None:
    # given: a description the Peer Service refuses (saved past the model's validators; a text column
    # has no length limit on SQLite or PostgreSQL)
    caplog.set_level(logging.ERROR, logger="registers.peer_client")

    # when
    make_register(advertise=True, description="d" * 3000)

    # then
    wait_until(lambda: task_events.failures, timeout=10, message="the refused push to fail")
    assert task_events.retries == []
    [record] = [r for r in caplog.records if "event=peer_request_rejected" in r.getMessage()]
    assert "status=400" in record.getMessage()
    assert "description" in record.getMessage()  # the Peer Service's own explanation


def test_a_flush_older_than_one_advertisement_ttl_is_abandoned_and_leaves_the_changes_pending(
    peer_service: AdvertisementStore, settings: Any, pending_changes: PendingChanges, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    register = make_register(advertise=True)
    [flush] = pending_changes.flushes()
    requested_at = time.time() - settings.ADVERTISEMENT_TTL - 1

    # when
    outcome = tasks.flush_pushes(flush["chain"], requested_at)

    # then: nothing sent; the next change's flush (or the beat's check) carries it
    assert outcome is None
    assert peer_service.local_advertisement(register.id) is None
    assert pending_changes.ids() == {register.id}
    assert any("event=push_abandoned" in r.getMessage() for r in caplog.records)


def test_a_flush_within_one_advertisement_ttl_is_still_delivered(
    peer_service: AdvertisementStore, settings: Any, pending_changes: PendingChanges
) -> None:
    # given
    register = make_register(advertise=True)
    [flush] = pending_changes.flushes()
    requested_at = (timezone.now() - timedelta(seconds=settings.ADVERTISEMENT_TTL - 5)).timestamp()

    # when
    counts = tasks.flush_pushes(flush["chain"], requested_at)

    # then
    assert counts is not None and counts["added"] == 1
    assert peer_service.local_advertisement(register.id) is not None
    assert pending_changes.ids() == set()


# ------------------------------------------------------------------------------------ coalescing
def public_ids() -> set[str]:
    return set(Register.objects.filter(advertise=True).values_list("id", flat=True))


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


def test_a_burst_of_changes_reaches_the_peer_service_in_far_fewer_requests_than_changes(
    peer_service: AdvertisementStore, worker: object, api: APIClient, peer_requests: list[str], settings: Any
) -> None:
    # given: a window long enough for a slow test machine to make its changes in a few of them
    settings.PUSH_COALESCE_WINDOW = 1.0
    changes = 0

    # when: creates (public and private), flips both ways and deletes, as fast as the API answers
    created = []
    for n in range(24):
        response = api.post("/api/registers/", register_body(name=f"burst-{n}", advertise=n % 4 != 3), format="json")
        created.append(response.json()["id"])
        changes += 1
    for register_id in created[:12]:
        api.patch(f"/api/registers/{register_id}/", {"advertise": False}, format="json")
        changes += 1
    for register_id in created[3:12:4]:  # private ones made public again
        api.patch(f"/api/registers/{register_id}/", {"advertise": True}, format="json")
        changes += 1
    for register_id in created[12:20]:
        api.delete(f"/api/registers/{register_id}/")
        changes += 1

    # then
    wait_until(lambda: local_ids(peer_service) == public_ids(), timeout=20, message="the pool equal to the public set")
    assert all(path.endswith("/bulk-advertise") for path in peer_requests)
    assert len(peer_requests) <= changes // 4, f"{len(peer_requests)} requests for {changes} changes"


def test_a_register_flipped_private_and_back_within_one_window_ends_public(
    peer_service: AdvertisementStore, worker: object, api: APIClient, peer_requests: list[str], settings: Any
) -> None:
    # given: a public register, pushed
    settings.PUSH_COALESCE_WINDOW = 2.0
    register_id = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]
    wait_until(lambda: peer_service.local_advertisement(register_id), timeout=10, message="the first push")
    peer_requests.clear()

    # when: private, then public again, within one window
    api.patch(f"/api/registers/{register_id}/", {"advertise": False}, format="json")
    api.patch(f"/api/registers/{register_id}/", {"description": "back", "advertise": True}, format="json")

    # then: the one flush sent the final state
    final = Register.objects.get(pk=register_id)
    wait_until(
        lambda: (entry := peer_service.local_advertisement(register_id)) and entry.fields["description"] == "back",
        timeout=10,
        message="the final state pushed",
    )
    entry = peer_service.local_advertisement(register_id)
    assert entry is not None and entry.source_updated_at == to_micros(final.updated_at)
    assert peer_requests == ["/api/registers/bulk-advertise"]


def test_a_deletion_is_pushed_with_its_deletion_time_and_a_later_stale_re_add_is_refused(
    peer_service: AdvertisementStore, worker: object, api: APIClient
) -> None:
    # given: a public register, pushed
    register_id = api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"]
    wait_until(lambda: peer_service.local_advertisement(register_id), timeout=10, message="the first push")
    register = Register.objects.get(pk=register_id)

    # when
    api.delete(f"/api/registers/{register_id}/")
    wait_until(lambda: peer_service.local_advertisement(register_id) is None, timeout=10, message="the removal")

    # then: a push stamped after the register's last update, but before its deletion, is refused
    result, _ = peer_service.advertise(
        AdvertisementInput(register_id, True, name=register.name, source_updated_at=to_micros(register.updated_at) + 1)
    )
    assert result.stale == 1
    assert peer_service.local_advertisement(register_id) is None


def test_a_register_the_peer_service_refuses_does_not_hold_back_the_others_of_its_flush(
    peer_service: AdvertisementStore,
    worker: object,
    task_events: TaskEvents,
    pending_changes: PendingChanges,
    peer_requests: list[str],
    settings: Any,
) -> None:
    # given: changes pending together (one window), one of them with a description the Peer Service refuses
    # (saved past the model's validators; a text column takes it on SQLite and PostgreSQL alike)
    settings.PUSH_COALESCE_WINDOW = 2.0
    good = [make_register(advertise=True) for _ in range(16)]
    bad = make_register(advertise=True, description="d" * 3000)

    # then: the others land, the refused one is not retried, and the flush is recorded as failed
    wait_until(lambda: local_ids(peer_service) == {r.id for r in good}, timeout=10, message="the others delivered")
    wait_until(lambda: task_events.failures, timeout=10, message="the flush to fail for the refused register")
    assert task_events.retries == []
    assert peer_service.local_advertisement(bad.id) is None
    assert pending_changes.ids() == set()
    # one request, then halves down to the refused register: at most 1 + 2 * ceil(log2(17)), not one per register
    assert len(peer_requests) <= 11


def test_a_flush_that_cannot_reach_the_peer_service_leaves_its_changes_waiting(
    late_peer_service: LatePeerService, pending_changes: PendingChanges
) -> None:
    # given
    ids = [make_register(advertise=True).id for _ in range(3)]
    Register.objects.get(pk=ids[2]).delete()
    [flush] = pending_changes.flushes()

    # when
    with pytest.raises(PeerServiceUnavailable):
        pushes.flush(flush["chain"])

    # then: all of them wait for the retry, the deletion with its time
    assert pending_changes.ids() == set(ids)
    assert set(pending_changes.deleted_at()) == {ids[2]}


def test_a_flush_is_chunked_to_the_peer_service_bound_on_items(peer_service: AdvertisementStore, settings: Any) -> None:
    # given
    settings.SORCHA_BULK_MAX_ITEMS = 2
    registers = [make_register(advertise=True) for _ in range(5)]

    # when
    result = push_changes([r.id for r in registers], {})

    # then
    assert result.requests == 3
    assert local_ids(peer_service) == {r.id for r in registers}


def test_changes_made_while_a_flush_runs_are_carried_by_the_next_one_of_its_chain(
    peer_service: AdvertisementStore, pending_changes: PendingChanges
) -> None:
    # given: a flush scheduled by the first change
    first = make_register(advertise=True)
    [flush] = pending_changes.flushes()
    taken = pending_pushes.take()

    # when: another change arrives while that flush is sending
    second = make_register(advertise=True)
    push_changes(taken.all_ids(), {})
    pending_pushes.delivered(taken)
    pushes.rearm(flush["chain"], FlushKey())

    # then: the change did not start a chain of its own; the running one re-armed for it
    assert taken.all_ids() == {first.id}
    assert [f["chain"] for f in pending_changes.flushes()] == [flush["chain"], flush["chain"]]
    assert pending_changes.ids() == {second.id}


def test_a_flush_refused_whole_costs_one_request_and_keeps_its_changes(
    peer_service: AdvertisementStore,
    pending_changes: PendingChanges,
    peer_requests: list[str],
    settings: Any,
) -> None:
    # given: 16 changes pending, and a Register Service whose token the Peer Service no longer takes
    ids = {make_register(advertise=True).id for _ in range(16)}
    wrong_token = PeerServiceClient(settings.PEER_SERVICE_URL, "x" * 32, 3.0, 10.0)

    # when
    with pytest.raises(PeerServiceRejected) as refused:
        pushes.flush("test-chain", client=wrong_token)

    # then: one request, not one per halving down to each register; nothing lost from the push path
    assert refused.value.status == 401
    assert len(peer_requests) == 1
    assert pending_changes.ids() == ids
    assert local_ids(peer_service) == set()
