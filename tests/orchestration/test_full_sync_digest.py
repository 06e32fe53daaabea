"""The Register Service's full sync by digest over real HTTP: what travels, what comes back, and the
plain full sync it falls back on for a Peer Service without the reconcile route."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.core.signals import request_started
from django.urls import include, path
from django.utils import timezone

from peers.api import urls as peer_api_urls
from peers.store import AdvertisementStore
from registers import advertising
from registers.advertising import full_sync
from registers.models import Register
from tests.orchestration.test_full_sync import local_ids
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db(transaction=True)

RECONCILE = "/api/registers/reconcile"
BULK = "/api/registers/bulk-advertise"

# A Peer Service of original Sorcha: the Peer API without the reconcile route (the ROOT_URLCONF of the
# fallback tests, served by the same live server).
urlpatterns = [path("api/", include([route for route in peer_api_urls.urlpatterns if route.name != "reconcile"]))]


@pytest.fixture(autouse=True)
def digest_support_forgotten() -> Iterator[None]:
    """Each test starts with no Peer Service remembered as lacking digests, and leaves none behind."""
    advertising._without_digest.clear()
    yield
    advertising._without_digest.clear()


@pytest.fixture
def sync_requests() -> Iterator[list[str]]:
    """The paths of the full-sync requests (reconcile, bulk-advertise) the Peer Service received."""
    paths: list[str] = []

    def record(sender: Any = None, environ: dict[str, Any] | None = None, **_: Any) -> None:
        environ = environ or {}
        path_info = str(environ.get("PATH_INFO", "")).rstrip("/")
        if environ.get("REQUEST_METHOD") == "POST" and path_info in (RECONCILE, BULK):
            paths.append(path_info)

    request_started.connect(record, weak=False)
    yield paths
    request_started.disconnect(record)


def public_registers(count: int) -> list[Register]:
    """Public registers last changed an hour ago: well before any full sync's snapshot."""
    registers = [make_register(advertise=True) for _ in range(count)]
    Register.objects.filter(pk__in=[r.pk for r in registers]).update(updated_at=timezone.now() - timedelta(hours=1))
    return [Register.objects.get(pk=r.pk) for r in registers]


def test_a_second_full_sync_with_nothing_changed_sends_one_digest_request_and_nothing_else(
    peer_service: AdvertisementStore, sync_requests: list[str]
) -> None:
    # given
    registers = public_registers(3)
    full_sync("manual")
    sync_requests.clear()

    # when
    result = full_sync("periodic")

    # then
    assert sync_requests == [RECONCILE]
    assert (result.requests, result.registers_pushed) == (1, 3)
    assert result.counts == {
        "processed": 3,
        "added": 0,
        "updated": 0,
        "removed": 0,
        "unchanged": 3,
        "held": 0,
        "stale": 0,
    }
    assert local_ids(peer_service) == {r.id for r in registers}


def test_after_a_register_changes_only_that_register_travels_in_full(
    peer_service: AdvertisementStore, sync_requests: list[str]
) -> None:
    # given: one register renamed (its updated_at moves), its push not delivered
    registers = public_registers(4)
    full_sync("manual")
    renamed = registers[0]
    renamed.name = "renamed"
    renamed.save()
    sync_requests.clear()

    # when
    result = full_sync("periodic")

    # then
    assert sync_requests == [RECONCILE, BULK]
    assert result.requests == 2
    assert (result.counts["updated"], result.counts["unchanged"], result.counts["added"]) == (1, 3, 0)
    entry = peer_service.local_advertisement(renamed.id)
    assert entry is not None and entry.fields["name"] == "renamed"


def test_an_advertisement_deleted_from_the_peer_service_behind_its_back_comes_back(
    peer_service: AdvertisementStore,
) -> None:
    # given: Redis lost one advertisement, and the Peer Service's memory does not know it yet
    registers = public_registers(3)
    full_sync("manual")
    lost = registers[1].id
    peer_service.client.delete(peer_service.local_key(lost))

    # when
    result = full_sync("periodic")

    # then
    assert result.requests == 2
    assert (result.counts["added"], result.counts["unchanged"]) == (1, 2)
    assert peer_service.client.exists(peer_service.local_key(lost)) == 1
    assert local_ids(peer_service) == {r.id for r in registers}


def test_a_register_made_private_without_a_push_is_swept_by_the_digest_sync(
    peer_service: AdvertisementStore, sync_requests: list[str]
) -> None:
    # given: a register made private in the database directly (no save, so no push)
    registers = public_registers(3)
    full_sync("manual")
    hidden = registers[2].id
    Register.objects.filter(pk=hidden).update(advertise=False)
    sync_requests.clear()

    # when
    result = full_sync("periodic")

    # then: the final digest page needed nothing, so it swept
    assert sync_requests == [RECONCILE]
    assert (result.counts["removed"], result.counts["unchanged"], result.counts["held"]) == (1, 2, 0)
    assert local_ids(peer_service) == {r.id for r in registers[:2]}


def test_the_first_full_sync_goes_in_full_without_trying_a_digest(
    peer_service: AdvertisementStore, sync_requests: list[str]
) -> None:
    # given: no full sync has succeeded yet (the Peer Service cannot hold this node's set)
    registers = public_registers(3)

    # when
    result = full_sync("startup")

    # then
    assert sync_requests == [BULK]
    assert (result.requests, result.counts["added"]) == (1, 3)
    assert local_ids(peer_service) == {r.id for r in registers}


def test_a_peer_service_without_the_reconcile_route_gets_a_plain_full_sync(
    peer_service: AdvertisementStore, settings: Any, sync_requests: list[str]
) -> None:
    # given: an original Sorcha Peer Service, already sent one (plain) full sync
    settings.ROOT_URLCONF = __name__
    registers = public_registers(3)
    hidden = registers[2].id
    full_sync("startup")
    Register.objects.filter(pk=hidden).update(advertise=False)  # no push: only a full sync removes it
    sync_requests.clear()

    # when
    result = full_sync("periodic")

    # then: the digest was refused with 404, and every register went in full with fullSync
    assert sync_requests == [RECONCILE, BULK]
    assert (result.requests, result.registers_pushed) == (1, 2)
    assert (result.counts["unchanged"], result.counts["removed"]) == (2, 1)
    assert local_ids(peer_service) == {r.id for r in registers[:2]}
    assert settings.PEER_SERVICE_URL.rstrip("/") in advertising._without_digest


def test_a_peer_service_without_digests_is_remembered_and_not_sent_one_again(
    peer_service: AdvertisementStore, settings: Any, sync_requests: list[str]
) -> None:
    # given: a first full sync, and a second that found the reconcile route missing
    settings.ROOT_URLCONF = __name__
    registers = public_registers(3)
    full_sync("startup")
    full_sync("periodic")
    sync_requests.clear()

    # when
    result = full_sync("periodic")

    # then
    assert sync_requests == [BULK]
    assert (result.requests, result.counts["unchanged"]) == (1, 3)
    assert local_ids(peer_service) == {r.id for r in registers}
