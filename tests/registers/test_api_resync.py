"""`POST /api/registers/resync`: who may ask for a full sync, what is queued, and a broker outage."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import pytest
from celery.signals import after_task_publish
from django.contrib.auth.models import User
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from registers import enqueue, pushes, task_names

pytestmark = pytest.mark.django_db

RESYNC = "/api/registers/resync"


@pytest.fixture(autouse=True)
def broker_breaker_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(pushes, "_broker_down_until", 0.0)


@pytest.fixture
def published() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(task name, kwargs) of every task handed to the broker (the session's test Redis)."""
    tasks: list[tuple[str, dict[str, Any]]] = []

    def record(sender: str | None = None, body: Any = None, **_: Any) -> None:
        tasks.append((str(sender), dict(body[1])))

    after_task_publish.connect(record, weak=False)
    yield tasks
    after_task_publish.disconnect(record)


def session_client(user: User, enforce_csrf: bool = False) -> APIClient:
    client = APIClient(enforce_csrf_checks=enforce_csrf)
    client.force_login(user)
    return client


def test_the_service_token_queues_a_manual_full_sync(
    api_client: APIClient, published: list[tuple[str, dict[str, Any]]]
) -> None:
    # when
    response = api_client.post(RESYNC)

    # then
    assert response.status_code == 202
    body = response.json()
    assert body["taskId"]
    assert datetime.fromisoformat(body["queuedAt"]).tzinfo is not None
    assert published == [(task_names.FULL_SYNC, {"reason": "manual"})]


def test_a_staff_session_queues_a_full_sync(published: list[tuple[str, dict[str, Any]]]) -> None:
    # given
    staff = User.objects.create_user("staff", password="a-long-password-1", is_staff=True)

    # when
    response = session_client(staff).post(RESYNC)

    # then
    assert response.status_code == 202
    assert [name for name, _ in published] == [task_names.FULL_SYNC]


def test_a_session_post_without_the_csrf_token_is_refused(published: list[tuple[str, dict[str, Any]]]) -> None:
    # given
    staff = User.objects.create_user("staff", password="a-long-password-1", is_staff=True)

    # when
    response = session_client(staff, enforce_csrf=True).post(RESYNC)

    # then
    assert response.status_code == 403
    assert "CSRF" in response.json()["detail"]
    assert published == []


def test_a_user_who_is_not_staff_is_refused(published: list[tuple[str, dict[str, Any]]]) -> None:
    # given
    user = User.objects.create_user("visitor", password="a-long-password-1")

    # when
    response = session_client(user).post(RESYNC)

    # then
    assert response.status_code == 403
    assert published == []


def test_without_credentials_it_is_401(
    anonymous_client: APIClient, published: list[tuple[str, dict[str, Any]]]
) -> None:
    # when
    response = anonymous_client.post(RESYNC)

    # then
    assert response.status_code == 401
    assert published == []


def test_with_the_broker_down_it_is_503_with_a_message(api_client: APIClient, monkeypatch: pytest.MonkeyPatch) -> None:
    # given publishing fails as kombu fails when Redis refuses the connection
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(enqueue.app, "send_task", refuse)

    # when
    response = api_client.post(RESYNC)

    # then
    assert response.status_code == 503
    assert "broker" in response.json()["detail"]
    assert "no full sync was queued" in response.json()["detail"]
