"""Every full sync over real HTTP leaves one run in the history, failed ones included, pruned to the cap."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import timezone

from peers.store import AdvertisementStore
from registers.advertising import full_sync
from registers.peer_client import PeerServiceClient, PeerServiceRejected, PeerServiceUnavailable
from registers.sync_history import FullSyncRun
from sorcha_site.celery import app as celery_app
from tests.helpers import wait_until
from tests.orchestration.peer_server import LatePeerService
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_full_sync_records_a_run_with_the_peer_services_counts(peer_service: AdvertisementStore) -> None:
    # given
    make_register(advertise=True)
    make_register(advertise=True)
    before = timezone.now()

    # when
    full_sync("manual")

    # then
    run = FullSyncRun.objects.get()
    assert (run.reason, run.outcome, run.registers_pushed, run.processed, run.added, run.removed) == (
        "manual",
        "success",
        2,
        2,
        2,
        0,
    )
    assert before <= run.started_at <= timezone.now()
    assert 0 < run.duration_seconds < 30


def test_a_full_sync_that_will_be_retried_records_a_retrying_run(late_peer_service: LatePeerService) -> None:
    # when
    with pytest.raises(PeerServiceUnavailable):
        full_sync("startup", will_retry=True)

    # then
    run = FullSyncRun.objects.get()
    assert (run.reason, run.outcome, run.added) == ("startup", "retrying", None)
    assert "could not connect" in run.error


def test_a_full_sync_refused_by_the_peer_service_records_a_failed_run(
    peer_service: AdvertisementStore, settings: Any
) -> None:
    # given: a client holding the wrong token
    client = PeerServiceClient(settings.PEER_SERVICE_URL, "not-the-service-token-0000", 1.0, 5.0)

    # when
    with pytest.raises(PeerServiceRejected):
        full_sync("periodic", will_retry=True, client=client)

    # then
    run = FullSyncRun.objects.get()
    assert run.outcome == "failed"
    assert "401" in run.error


def test_the_history_keeps_only_the_newest_sync_history_max_runs(
    peer_service: AdvertisementStore, settings: Any
) -> None:
    # given
    settings.SYNC_HISTORY_MAX = 3
    make_register(advertise=True)

    # when
    for reason in ("startup", "periodic", "periodic", "manual", "periodic"):
        full_sync(reason)

    # then
    assert [run.reason for run in FullSyncRun.objects.all()] == ["periodic", "manual", "periodic"]


def test_a_worker_full_sync_records_its_retries_then_its_success(
    late_peer_service: LatePeerService, peer_store: AdvertisementStore, worker: object
) -> None:
    # given
    make_register(advertise=True)
    celery_app.send_task("registers.full_sync", kwargs={"reason": "periodic"})
    wait_until(lambda: FullSyncRun.objects.filter(outcome="retrying").exists(), timeout=10, message="a retrying run")

    # when
    late_peer_service.start()

    # then
    wait_until(lambda: FullSyncRun.objects.filter(outcome="success").exists(), timeout=15, message="a successful run")
    outcomes = list(FullSyncRun.objects.values_list("reason", "outcome"))
    assert outcomes[-1] == ("periodic", "success")
    assert set(outcomes[:-1]) == {("periodic", "retrying")}
