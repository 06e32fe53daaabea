"""The full-sync history: its pruning to SYNC_HISTORY_MAX and `GET /api/registers/sync-history`."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from rest_framework.test import APIClient

from registers import sync_history
from registers.peer_client import PeerServiceUnavailable
from registers.sync_history import FullSyncRun

pytestmark = pytest.mark.django_db

URL = "/api/registers/sync-history"
COUNTS = {"processed": 3, "added": 1, "updated": 1, "removed": 0, "unchanged": 1, "held": 0, "stale": 0}


def record_runs(count: int, reason: str = "periodic") -> None:
    start = timezone.now() - timedelta(minutes=count)
    for index in range(count):
        sync_history.record_success(reason, start + timedelta(minutes=index), 0.25 + index, 3, COUNTS)


# ------------------------------------------------------------------------------------- recording
def test_a_successful_run_is_kept_with_its_reason_start_duration_and_counts() -> None:
    # given
    started_at = timezone.now() - timedelta(seconds=2)

    # when
    sync_history.record_success("startup", started_at, 1.5, 3, COUNTS)

    # then
    run = FullSyncRun.objects.get()
    assert (run.reason, run.started_at, run.duration_seconds, run.outcome) == ("startup", started_at, 1.5, "success")
    assert (run.registers_pushed, run.processed, run.added, run.updated, run.removed, run.unchanged) == (
        3,
        3,
        1,
        1,
        0,
        1,
    )
    assert (run.held, run.stale, run.error) == (0, 0, "")


def test_a_failed_run_is_kept_with_its_error_and_no_counts() -> None:
    # when
    sync_history.record_failure(
        "periodic", timezone.now(), 0.1, PeerServiceUnavailable("could not connect"), will_retry=True
    )

    # then
    run = FullSyncRun.objects.get()
    assert (run.outcome, run.error) == ("retrying", "could not connect")
    assert (run.registers_pushed, run.added, run.held) == (None, None, None)


def test_a_failure_not_retried_is_recorded_as_failed() -> None:
    # when
    sync_history.record_failure("manual", timezone.now(), 0.1, RuntimeError("boom"), will_retry=False)

    # then
    assert FullSyncRun.objects.get().outcome == "failed"


# --------------------------------------------------------------------------------------- pruning
def test_only_the_newest_sync_history_max_runs_are_kept(settings: Any) -> None:
    # given
    settings.SYNC_HISTORY_MAX = 4

    # when
    record_runs(7)

    # then: the four newest, by duration (0.25 + index)
    assert [run.duration_seconds for run in FullSyncRun.objects.all()] == [3.25, 4.25, 5.25, 6.25]


def test_pruning_with_fewer_runs_than_the_cap_deletes_nothing() -> None:
    # given
    record_runs(3)

    # when
    deleted = sync_history.prune(keep=5)

    # then
    assert deleted == 0
    assert FullSyncRun.objects.count() == 3


def test_a_lowered_cap_is_applied_at_the_next_run(settings: Any) -> None:
    # given
    record_runs(6)
    settings.SYNC_HISTORY_MAX = 2

    # when
    record_runs(1, reason="manual")

    # then
    assert FullSyncRun.objects.count() == 2
    assert FullSyncRun.objects.last().reason == "manual"  # type: ignore[union-attr]


# ------------------------------------------------------------------------------------------- API
def test_the_api_lists_the_runs_oldest_first_in_camel_case(api_client: APIClient) -> None:
    # given
    record_runs(2)
    sync_history.record_failure("manual", timezone.now(), 0.5, RuntimeError("refused"), will_retry=False)

    # when
    response = api_client.get(URL)

    # then
    assert response.status_code == 200
    runs = response.json()
    assert [run["outcome"] for run in runs] == ["success", "success", "failed"]
    assert runs[0] == {
        "id": runs[0]["id"],
        "reason": "periodic",
        "startedAt": runs[0]["startedAt"],
        "durationSeconds": 0.25,
        "outcome": "success",
        "registersPushed": 3,
        **COUNTS,
        "error": "",
    }
    assert runs[2]["error"] == "refused" and runs[2]["added"] is None
    assert runs[0]["startedAt"] < runs[1]["startedAt"] < runs[2]["startedAt"]


def test_the_api_answers_with_and_without_a_trailing_slash(api_client: APIClient) -> None:
    assert api_client.get(URL).status_code == 200
    assert api_client.get(f"{URL}/").status_code == 200


def test_the_api_lists_at_most_sync_history_max_runs(api_client: APIClient, settings: Any) -> None:
    # given: more runs than the cap, as after lowering it (pruning waits for the next run)
    record_runs(5)
    settings.SYNC_HISTORY_MAX = 3

    # when
    runs = api_client.get(URL).json()

    # then: the newest three
    assert [run["durationSeconds"] for run in runs] == [2.25, 3.25, 4.25]


def test_the_api_needs_credentials(anonymous_client: APIClient) -> None:
    assert anonymous_client.get(URL).status_code == 401


def test_a_logged_in_user_may_read_the_history() -> None:
    # given
    client = APIClient()
    client.force_login(User.objects.create_user("reader", password="a-long-reader-password-1"))

    # when
    response = client.get(URL)

    # then
    assert response.status_code == 200


def test_a_query_parameter_is_refused_naming_it(api_client: APIClient) -> None:
    # when
    response = api_client.get(URL, {"limit": "5", "since": "yesterday"})

    # then
    assert response.status_code == 400
    assert "limit" in response.json()["detail"] and "since" in response.json()["detail"]
