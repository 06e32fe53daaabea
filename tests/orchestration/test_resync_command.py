"""`python manage.py resync`: output and exit status as an operator sees them, and what it records."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime, timedelta
from io import StringIO
from typing import Any

import pytest
import requests
from django.core.management import call_command
from django.utils import timezone

from peers.store import AdvertisementStore
from registers.models import AdvertisementSyncState, Register
from tests.constants import SERVICE_TOKEN
from tests.helpers import wait_until
from tests.orchestration.peer_server import LatePeerService
from tests.orchestration.processes import ROOT, manage_command, node_env
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db(transaction=True)


def run_resync(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        manage_command("resync", *args), cwd=ROOT, env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_resync_pushes_the_public_set_prints_one_summary_line_and_exits_zero(
    peer_service: AdvertisementStore, live_server: Any
) -> None:
    # given
    public = {make_register(advertise=True).id for _ in range(2)}
    make_register(advertise=False)

    # when
    completed = run_resync(node_env(live_server.url))

    # then
    assert completed.returncode == 0, completed.stderr
    [line] = completed.stdout.splitlines()
    assert line.startswith("full sync succeeded:")
    assert "registers=2" in line and "added=2" in line and "removed=0" in line
    assert {entry.register_id for entry in peer_service.local_advertisements()} == public


def test_resync_exits_non_zero_with_the_error_when_the_peer_service_is_down(
    late_peer_service: LatePeerService,
) -> None:
    # given
    make_register(advertise=True)

    # when
    completed = run_resync(node_env(late_peer_service.url))

    # then
    assert completed.returncode != 0
    assert completed.stdout == ""
    assert "full sync failed" in completed.stderr
    assert "could not connect" in completed.stderr


def test_resync_exits_non_zero_with_the_error_when_the_peer_service_refuses_it(
    peer_service: AdvertisementStore, live_server: Any
) -> None:
    # given: a Register Service holding a token the Peer Service does not accept
    env = node_env(live_server.url, SORCHA_SERVICE_TOKEN="a-token-the-peer-does-not-know")

    # when
    completed = run_resync(env)

    # then
    assert completed.returncode != 0
    assert "full sync failed" in completed.stderr
    assert "401" in completed.stderr


def test_resync_records_the_attempt_with_reason_manual(peer_service: AdvertisementStore) -> None:
    # given
    make_register(advertise=True)

    # when
    call_command("resync", stdout=StringIO())

    # then
    state = AdvertisementSyncState.load()
    assert (state.status, state.reason, state.registers_pushed) == ("success", "manual", 1)


def test_resync_dry_run_prints_what_would_be_pushed_and_changes_nothing(peer_service: AdvertisementStore) -> None:
    # given
    public = make_register(advertise=True, name="would-go")
    make_register(advertise=False, name="stays-home")
    out = StringIO()

    # when
    call_command("resync", "--dry-run", stdout=out)

    # then
    lines = out.getvalue().splitlines()
    assert lines[0] == f"would advertise {public.id} would-go"
    assert "registers=1 requests=1" in lines[-1]
    assert "stays-home" not in out.getvalue()
    assert peer_service.local_advertisements() == []
    assert AdvertisementSyncState.load().status == ""


def test_resync_enqueue_prints_the_task_id_and_a_worker_runs_the_sync(
    peer_service: AdvertisementStore, worker: object
) -> None:
    # given
    make_register(advertise=True)
    out = StringIO()

    # when
    call_command("resync", "--enqueue", stdout=out)

    # then
    assert out.getvalue().startswith("full sync enqueued: task_id=")
    state = wait_until(
        lambda: (s := AdvertisementSyncState.load()).status == "success" and s.reason == "manual" and s,
        timeout=10,
        message="the manual full sync run by the worker",
    )
    assert state.registers_pushed == 1


# ---------------------------------------------------------------- refused as stale: wait, retry
def bulk_advertise(base_url: str, body: dict[str, Any]) -> requests.Response:
    return requests.post(
        f"{base_url}/api/registers/bulk-advertise",
        json=body,
        headers={"Authorization": f"Bearer {SERVICE_TOKEN}"},
        timeout=30,
    )


def public_registers_changed_an_hour_ago(count: int) -> set[str]:
    ids = {make_register(advertise=True).id for _ in range(count)}
    Register.objects.filter(id__in=ids).update(updated_at=timezone.now() - timedelta(hours=1))
    return ids


def local_ids(store: AdvertisementStore) -> set[str]:
    return {entry.register_id for entry in store.local_advertisements()}


def test_resync_right_after_a_wrongful_full_sync_without_snapshot_at_restores_the_set_and_exits_zero(
    peer_service: AdvertisementStore, live_server: Any
) -> None:
    # given: the public set advertised, then a full sync of the original client's shape (no snapshotAt)
    # that lists none of it and sweeps it
    public = public_registers_changed_an_hour_ago(3)
    call_command("resync", stdout=StringIO())
    assert local_ids(peer_service) == public
    stray = make_register(advertise=False).id
    wrongful = bulk_advertise(
        live_server.url, {"advertisements": [{"registerId": stray, "isPublic": True}], "fullSync": True}
    )
    assert wrongful.status_code == 200, wrongful.text
    assert not local_ids(peer_service) & public

    # when: the operator runs resync at once
    completed = run_resync(node_env(live_server.url))

    # then: accepted at once (the wrongful sync was stamped the same margin earlier), nothing to wait for
    assert completed.returncode == 0, completed.stderr
    [line] = completed.stdout.splitlines()
    assert line.startswith("full sync succeeded:")
    assert public <= local_ids(peer_service)


def test_resync_refused_as_stale_waits_says_for_what_and_succeeds_once_the_newer_snapshot_has_passed(
    peer_service: AdvertisementStore, live_server: Any
) -> None:
    # given: a full sync whose snapshot lies a few seconds ahead (another host's clock, within CLOCK_SKEW_MAX)
    public = public_registers_changed_an_hour_ago(2)
    ahead = datetime.now(tz=UTC) + timedelta(seconds=3)
    items = [{"registerId": rid, "isPublic": True, "name": "n"} for rid in sorted(public)]
    newer = bulk_advertise(
        live_server.url, {"advertisements": items, "fullSync": True, "snapshotAt": ahead.isoformat()}
    )
    assert newer.status_code == 200, newer.text

    # when: resync takes its snapshot now, older than that one, and is refused as stale at first
    completed = run_resync(node_env(live_server.url, FULL_SYNC_SNAPSHOT_MARGIN="1", RECONCILE_INTERVAL="30"))

    # then
    assert completed.returncode == 0, completed.stderr
    lines = completed.stdout.splitlines()
    waiting = [line for line in lines if line.startswith("full sync refused as stale")]
    assert waiting, completed.stdout
    assert "a newer full sync has already been applied" in waiting[0]
    assert "retrying in" in waiting[0] and "RECONCILE_INTERVAL" in waiting[0]
    assert lines[-1].startswith("full sync succeeded:")
    state = AdvertisementSyncState.load()
    assert (state.status, state.reason) == ("success", "manual")


def test_resync_still_refused_after_one_reconcile_interval_exits_non_zero_saying_so(
    peer_service: AdvertisementStore, live_server: Any
) -> None:
    # given: a full sync whose snapshot lies minutes ahead
    public = public_registers_changed_an_hour_ago(1)
    ahead = datetime.now(tz=UTC) + timedelta(seconds=240)
    items = [{"registerId": rid, "isPublic": True, "name": "n"} for rid in public]
    assert bulk_advertise(
        live_server.url, {"advertisements": items, "fullSync": True, "snapshotAt": ahead.isoformat()}
    ).ok

    # when
    started = datetime.now(tz=UTC)
    completed = run_resync(node_env(live_server.url, FULL_SYNC_SNAPSHOT_MARGIN="1", RECONCILE_INTERVAL="4"))
    took = (datetime.now(tz=UTC) - started).total_seconds()

    # then: it waited about one RECONCILE_INTERVAL, then gave up naming why
    assert completed.returncode != 0
    assert "full sync refused as stale" in completed.stdout
    assert "full sync failed" in completed.stderr
    assert "still refused as stale after waiting" in completed.stderr
    assert took >= 4
