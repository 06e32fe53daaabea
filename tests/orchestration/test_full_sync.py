"""The full sync over real HTTP: chunking, the sweep, and the sync state it records."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from registers.advertising import full_sync
from registers.models import AdvertisementSyncState, Register
from registers.peer_client import PeerServiceClient, PeerServiceRejected, PeerServiceUnavailable
from registers.sync_lock import FullSyncBusy, exclusive_full_sync
from registers.wire import PlannedAdvertisement, chunked
from sorcha_site.celery import app as celery_app
from tests.conftest import register_id
from tests.helpers import wait_until
from tests.orchestration.peer_server import LatePeerService
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db(transaction=True)


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


def stale_local_advertisement(store: AdvertisementStore) -> str:
    """A local advertisement of a register this node no longer has."""
    stale_id = register_id()
    store.advertise(AdvertisementInput(stale_id, True, name="gone", source_updated_at=1_000_000))
    return stale_id


# -------------------------------------------------------------------------------------- chunking
def test_more_registers_than_one_request_takes_arrive_complete_and_a_stale_one_is_swept_once(
    peer_service: AdvertisementStore, settings: Any
) -> None:
    # given
    settings.SORCHA_BULK_MAX_ITEMS = 3
    public = {make_register(advertise=True).id for _ in range(7)}
    make_register(advertise=False)
    stale_id = stale_local_advertisement(peer_service)

    # when: the first full sync (no digest: the Peer Service cannot hold this node's set yet)
    result = full_sync("manual")

    # then
    assert result.requests == 3
    assert local_ids(peer_service) == public
    assert (result.counts["added"], result.counts["removed"]) == (7, 1)
    assert stale_id not in local_ids(peer_service)


def test_a_full_sync_by_digest_in_pages_sends_in_full_only_what_changed_and_sweeps_once(
    peer_service: AdvertisementStore, settings: Any
) -> None:
    # given: a first full sync succeeded, then two registers changed and one went private without a push
    settings.FULL_SYNC_SNAPSHOT_MARGIN = 0  # (no transaction is left open here)
    registers = [make_register(advertise=True) for _ in range(7)]
    full_sync("manual")
    settings.SORCHA_DIGEST_MAX_ITEMS = 3
    settings.SORCHA_BULK_MAX_ITEMS = 1
    for register in registers[:2]:
        register.name = f"{register.name}-renamed"
        register.save()
    Register.objects.filter(pk=registers[2].pk).update(advertise=False)  # no signal, no push

    # when
    result = full_sync("manual")

    # then: two pages of digest (six public), the two renamed in one request each, the private one swept
    assert result.requests == 2 + 2
    assert (result.counts["updated"], result.counts["unchanged"], result.counts["removed"]) == (2, 4, 1)
    assert local_ids(peer_service) == {register.id for register in registers} - {registers[2].id}
    assert {entry.fields["name"] for entry in peer_service.local_advertisements()} >= {
        registers[0].name,
        registers[1].name,
    }


def test_a_chunk_closes_before_its_items_outgrow_the_body_limit() -> None:
    # given
    items = [PlannedAdvertisement(register_id(), "r", b"x" * 40) for _ in range(5)]

    # when
    chunks = list(chunked(items, max_items=100, max_bytes=100))

    # then
    assert [len(chunk) for chunk in chunks] == [2, 2, 1]


def test_a_full_sync_of_zero_public_registers_removes_the_local_advertisements_once_confirmed(
    peer_service: AdvertisementStore,
) -> None:
    # given
    make_register(advertise=False)
    stale_id = stale_local_advertisement(peer_service)

    # when: an empty full sync that would remove anything is held (ARCHITECTURE §4, the guard)
    first = full_sync("manual")

    # then
    assert (first.registers_pushed, first.requests, first.counts["removed"], first.counts["held"]) == (0, 1, 0, 1)
    assert stale_id in local_ids(peer_service)

    # when: the next full sync confirms it
    second = full_sync("manual")

    # then
    assert (second.registers_pushed, second.counts["removed"], second.counts["held"]) == (0, 1, 0)
    assert stale_id not in local_ids(peer_service)


def test_a_full_sync_gives_up_when_another_one_on_this_node_outlasts_its_wait(peer_service: AdvertisementStore) -> None:
    # given / when
    with exclusive_full_sync(), pytest.raises(FullSyncBusy):
        full_sync("periodic", wait_for_running=0.2)

    # then
    assert AdvertisementSyncState.load().status == ""


# ------------------------------------------------------------------------------------ sync state
def test_a_successful_full_sync_records_success_with_the_peer_services_counts(
    peer_service: AdvertisementStore,
) -> None:
    # given
    make_register(advertise=True)
    make_register(advertise=True)

    # when
    full_sync("manual")

    # then
    state = AdvertisementSyncState.load()
    assert (state.status, state.reason, state.registers_pushed) == ("success", "manual", 2)
    assert (state.added, state.updated, state.removed, state.unchanged, state.held) == (2, 0, 0, 0, 0)
    assert state.last_success_at is not None
    assert state.last_attempt_at is not None and state.last_attempt_at <= state.last_success_at


def test_a_full_sync_records_in_progress_while_it_runs(peer_service: AdvertisementStore) -> None:
    # given
    seen: list[str] = []

    # when
    full_sync("manual", heartbeat=lambda: seen.append(AdvertisementSyncState.load().status))

    # then
    assert seen == ["in_progress"]


def test_a_full_sync_that_will_be_retried_records_retrying_and_counts_failures(
    late_peer_service: LatePeerService,
) -> None:
    # when
    for _ in range(2):
        with pytest.raises(PeerServiceUnavailable):
            full_sync("startup", will_retry=True)

    # then
    state = AdvertisementSyncState.load()
    assert (state.status, state.consecutive_failures) == ("retrying", 2)
    assert "could not connect" in state.last_error


def test_a_full_sync_refused_by_the_peer_service_records_failed(
    peer_service: AdvertisementStore, settings: Any
) -> None:
    # given: a client holding the wrong token
    client = PeerServiceClient(settings.PEER_SERVICE_URL, "not-the-service-token-0000", 1.0, 5.0)

    # when
    with pytest.raises(PeerServiceRejected):
        full_sync("periodic", will_retry=True, client=client)

    # then
    state = AdvertisementSyncState.load()
    assert (state.status, state.consecutive_failures) == ("failed", 1)
    assert "401" in state.last_error


def test_a_success_after_failures_resets_the_failure_count(late_peer_service: LatePeerService, settings: Any) -> None:
    # given
    with pytest.raises(PeerServiceUnavailable):
        full_sync("startup", will_retry=True)
    late_peer_service.start()

    # when
    full_sync("startup", will_retry=True)

    # then
    state = AdvertisementSyncState.load()
    assert (state.status, state.consecutive_failures, state.last_error, state.next_retry_at) == ("success", 0, "", None)


def test_a_worker_retrying_a_full_sync_records_when_it_will_try_again(
    late_peer_service: LatePeerService, worker: object
) -> None:
    # when
    celery_app.send_task("registers.full_sync", kwargs={"reason": "manual"})

    # then
    state = wait_until(
        lambda: (s := AdvertisementSyncState.load()).next_retry_at and s,
        timeout=10,
        message="a retrying full sync with its next retry time",
    )
    assert state.status == "retrying"
    assert state.last_attempt_at is not None and state.next_retry_at >= state.last_attempt_at


def test_a_worker_full_sync_retries_until_the_peer_service_answers(
    late_peer_service: LatePeerService, peer_store: AdvertisementStore, worker: object
) -> None:
    # given
    register = make_register(advertise=True)
    celery_app.send_task("registers.full_sync", kwargs={"reason": "manual"})
    wait_until(lambda: AdvertisementSyncState.load().status == "retrying", timeout=10)

    # when
    late_peer_service.start()

    # then
    wait_until(lambda: AdvertisementSyncState.load().status == "success", timeout=15, message="a successful retry")
    assert local_ids(peer_store) == {register.id}


# ----------------------------------------------------------------------------- API and the admin
def test_the_sync_state_api_answers_in_camel_case(peer_service: AdvertisementStore, api: APIClient) -> None:
    # given
    make_register(advertise=True)
    full_sync("manual")

    # when
    response = api.get("/api/registers/sync-state")

    # then
    assert response.status_code == 200
    body = response.json()
    assert {key: body[key] for key in ("status", "reason", "registersPushed", "added", "consecutiveFailures")} == {
        "status": "success",
        "reason": "manual",
        "registersPushed": 1,
        "added": 1,
        "consecutiveFailures": 0,
    }
    assert body["lastSuccessAt"] is not None
    assert body["nextRetryAt"] is None


def test_the_sync_state_api_answers_null_status_before_the_first_full_sync(api: APIClient) -> None:
    # when
    body = api.get("/api/registers/sync-state").json()

    # then
    assert (body["status"], body["reason"], body["lastAttemptAt"]) == (None, None, None)


def test_the_sync_state_api_needs_credentials(client: Client) -> None:
    # when
    response = client.get("/api/registers/sync-state")

    # then
    assert response.status_code in (401, 403)


def test_the_sync_state_admin_page_is_read_only(peer_service: AdvertisementStore, admin_client: Client) -> None:
    # given
    full_sync("manual")

    # when
    page = admin_client.get(reverse("admin:registers_advertisementsyncstate_change", args=[1]))
    add = admin_client.get(reverse("admin:registers_advertisementsyncstate_add"))

    # then
    assert page.status_code == 200
    assert "Save" not in page.content.decode()
    assert add.status_code == 403


# ------------------------------------------------------------------- a clock step (issue 10, case 1)
def test_a_full_sync_refused_as_stale_is_retried_and_goes_through_within_one_reconcile_interval(
    peer_service: AdvertisementStore,
) -> None:
    # given: the Peer Service applied a snapshot from a Register Service clock that ran ahead, then stepped back
    register = make_register(advertise=True)
    peer_service.reconcile_interval = 1.0
    ahead = AdvertisementInput(register.id, True, name=register.name, source_updated_at=1_000_000)
    peer_service.apply_bulk([ahead], full_sync=True, snapshot_at=now_micros() + 200 * 1_000_000)

    # when / then: the refusal is one to retry, not a permanent rejection
    with pytest.raises(PeerServiceUnavailable, match="stale"):
        full_sync("manual", will_retry=True)
    assert AdvertisementSyncState.load().status == "retrying"

    # and a retry goes through once the stored snapshot is voided (one reconcile interval at most)
    wait_until(lambda: full_sync("manual").requests == 1, timeout=15, message="full sync accepted again")
    assert peer_service.status()["voidedSnapshots"] == 1
