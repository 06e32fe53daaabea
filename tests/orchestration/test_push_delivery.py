"""Pushes reach the Peer Service over real HTTP: what they carry, retries, give-up, refusals."""

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
from registers.advertising import push_register
from registers.models import Register
from tasks import tasks
from tests.helpers import wait_until
from tests.orchestration.peer_server import LatePeerService
from tests.registers.factories import make_register, register_body

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
    outcome = push_register(register.id)

    # then
    assert outcome == "added"
    entry = peer_service.local_advertisement(register.id)
    assert entry is not None
    assert entry.fields["name"] == "ledger"
    assert (entry.fields["latestVersion"], entry.fields["latestDocketVersion"]) == (7, 3)
    assert entry.source_updated_at == to_micros(register.updated_at)


def test_a_push_of_a_private_register_removes_its_advertisement(peer_service: AdvertisementStore) -> None:
    # given
    register = make_register(advertise=True)
    push_register(register.id)
    Register.objects.filter(pk=register.pk).update(advertise=False, updated_at=timezone.now())

    # when
    outcome = push_register(register.id)

    # then
    assert outcome == "removed"
    assert peer_service.local_advertisement(register.id) is None


def test_the_removal_of_a_deleted_register_refuses_an_older_push_arriving_after_it(
    peer_service: AdvertisementStore,
) -> None:
    # given: a register pushed, then deleted
    register = make_register(advertise=True)
    register_id, updated_at = register.id, register.updated_at
    push_register(register_id)
    register.delete()
    push_register(register_id, deleted_at=timezone.now())

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
    late_peer_service: LatePeerService, peer_store: AdvertisementStore, worker: object, task_events: TaskEvents
) -> None:
    # given: the Peer Service is down when the register is created, and the push has failed once
    register = make_register(advertise=True)
    wait_until(lambda: task_events.retries, timeout=10, message="a failed push attempt")

    # when
    late_peer_service.start()

    # then
    wait_until(lambda: peer_store.local_advertisement(register.id), timeout=10, message="the retried push")
    assert peer_store.status()["lastFullSync"] is None


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


def test_a_push_older_than_one_advertisement_ttl_is_abandoned_to_the_full_sync(
    peer_service: AdvertisementStore, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given
    register = make_register(advertise=True)
    requested_at = time.time() - settings.ADVERTISEMENT_TTL - 1

    # when
    outcome = tasks.push_register(register.id, requested_at)

    # then
    assert outcome is None
    assert peer_service.local_advertisement(register.id) is None
    assert any("event=push_abandoned" in r.getMessage() for r in caplog.records)


def test_a_push_within_one_advertisement_ttl_is_still_delivered(
    peer_service: AdvertisementStore, settings: Any
) -> None:
    # given
    register = make_register(advertise=True)
    requested_at = (timezone.now() - timedelta(seconds=settings.ADVERTISEMENT_TTL - 5)).timestamp()

    # when
    outcome = tasks.push_register(register.id, requested_at)

    # then
    assert outcome == "added"
