"""`python manage.py resync`: output and exit status as an operator sees them, and what it records."""

from __future__ import annotations

import subprocess
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command

from peers.store import AdvertisementStore
from registers.models import AdvertisementSyncState
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
