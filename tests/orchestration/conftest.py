"""Fixtures of the orchestration tests: a live Peer Service, a Celery worker, real node processes."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from celery.contrib.testing.worker import start_worker
from celery.signals import after_task_publish
from django.core.signals import request_started

from peers.store import AdvertisementStore
from registers import pending_pushes, pushes, task_names
from registers.pending_pushes import FlushKey
from sorcha_site.celery import app as celery_app
from tests.orchestration.peer_server import LatePeerService
from tests.orchestration.processes import NodeProcess


@pytest.fixture(autouse=True)
def broker_breaker_closed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with the broker considered reachable (the breaker is per process)."""
    monkeypatch.setattr(pushes, "_broker_down_until", 0.0)


@pytest.fixture(autouse=True)
def no_flush_key() -> None:
    """Each test starts with no flush holding the key (its task may have been purged); the database, and so
    the outbox, starts empty for every test."""
    FlushKey().clear()


@pytest.fixture
def peer_service(live_server: Any, settings: Any, peer_store: AdvertisementStore) -> AdvertisementStore:
    """The Peer Service over real HTTP (the live server) with a store of this test's own."""
    settings.PEER_SERVICE_URL = live_server.url
    return peer_store


@pytest.fixture
def late_peer_service(settings: Any, peer_store: AdvertisementStore) -> Iterator[LatePeerService]:
    """A Peer Service URL with nothing behind it until the test calls `start()`."""
    service = LatePeerService()
    settings.PEER_SERVICE_URL = service.url
    yield service
    service.stop()


@pytest.fixture
def worker(transactional_db: None) -> Iterator[object]:
    """A Celery worker in a thread of this process, consuming the node's real queues on the test Redis.

    Like every embedded worker it does not send `worker_ready`; the startup tests use real processes.
    """
    celery_app.control.purge()  # pushes left on the broker by earlier tests
    with start_worker(celery_app, pool="solo", perform_ping_check=False, loglevel="WARNING") as embedded:
        yield embedded


@pytest.fixture
def published_tasks() -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """(task name, kwargs) of every task this process hands to the broker."""
    published: list[tuple[str, dict[str, Any]]] = []

    def record(sender: str | None = None, body: Any = None, **_: Any) -> None:
        _, kwargs, _ = body
        published.append((str(sender), dict(kwargs)))

    after_task_publish.connect(record, weak=False)
    yield published
    after_task_publish.disconnect(record)


@pytest.fixture
def published_task_headers() -> Iterator[list[dict[str, Any]]]:
    """The message headers (eta, retries, ...) of every task this process hands to the broker."""
    published: list[dict[str, Any]] = []

    def record(sender: str | None = None, headers: dict[str, Any] | None = None, **_: Any) -> None:
        published.append(dict(headers or {}))

    after_task_publish.connect(record, weak=False)
    yield published
    after_task_publish.disconnect(record)


class PendingChanges:
    """What the push path recorded: the changes waiting in the outbox, and the flushes published to the broker."""

    def __init__(self, published_tasks: list[tuple[str, dict[str, Any]]]) -> None:
        self.published_tasks = published_tasks

    def ids(self) -> set[str]:
        return pending_pushes.take().all_ids()

    def deleted_at(self) -> dict[str, datetime]:
        return pending_pushes.take().deleted_at

    def flushes(self) -> list[dict[str, Any]]:
        """The kwargs of the flush tasks published so far."""
        return [kwargs for name, kwargs in self.published_tasks if name == task_names.FLUSH_PUSHES]

    def reset(self) -> None:
        """Forget what the test's `given` recorded (and free the key, as its flush would)."""
        pending_pushes.forget()
        FlushKey().clear()
        self.published_tasks.clear()


@pytest.fixture
def pending_changes(published_tasks: list[tuple[str, dict[str, Any]]]) -> PendingChanges:
    return PendingChanges(published_tasks)


@pytest.fixture
def peer_requests() -> Iterator[list[str]]:
    """The paths of the push requests (`.../bulk-advertise`) the Peer Service received in-process."""
    paths: list[str] = []

    def record(sender: Any = None, environ: dict[str, Any] | None = None, **_: Any) -> None:
        path = str((environ or {}).get("PATH_INFO", ""))
        if path.endswith("advertise") and (environ or {}).get("REQUEST_METHOD") == "POST":
            paths.append(path)

    request_started.connect(record, weak=False)
    yield paths
    request_started.disconnect(record)


@pytest.fixture
def node_processes(tmp_path: Path) -> Iterator[Callable[..., NodeProcess]]:
    """Start real processes; all are stopped at teardown, whatever the test did."""
    started: list[NodeProcess] = []

    def start(name: str, command: list[str], env: dict[str, str]) -> NodeProcess:
        process = NodeProcess(name, command, env, tmp_path)
        started.append(process)
        return process

    yield start
    for process in started:
        process.stop()
