"""Broker (or Redis) down: changing a register still succeeds; the push is logged as deferred for the full sync.

The Register Service here is a real web process whose broker URL points where nothing listens
(Redis down: this process, with its Redis URL pointed where nothing listens).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from rest_framework.test import APIClient

from registers.models import Register
from tests.conftest import point_coordination_at
from tests.helpers import wait_until
from tests.orchestration.processes import BIN, NodeProcess, node_env
from tests.plugin import SERVICE_TOKEN
from tests.redis_server import free_port
from tests.registers.factories import make_register, register_body

pytestmark = pytest.mark.django_db(transaction=True)


class WebNode:
    def __init__(self, process: NodeProcess, url: str) -> None:
        self.process = process
        self.url = url
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {SERVICE_TOKEN}"

    def deferred(self, register_id: str) -> bool:
        return f"event=push_deferred register_id={register_id}" in self.process.log()


@pytest.fixture(scope="module")
def web_without_broker(
    live_server: Any, django_db_setup: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[WebNode]:
    port = free_port()
    env = node_env(live_server.url, CELERY_BROKER_URL=f"redis://127.0.0.1:{free_port()}/1")
    command = [str(BIN / "gunicorn"), "sorcha_site.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    process = NodeProcess("web", command, env, tmp_path_factory.mktemp("broker-down"))
    node = WebNode(process, f"http://127.0.0.1:{port}")
    wait_until(lambda: node.session.get(f"{node.url}/healthz", timeout=1).ok, timeout=30, message="the web process")
    yield node
    process.stop()


def test_creating_a_public_register_answers_201_while_the_broker_is_down(web_without_broker: WebNode) -> None:
    # when
    started = time.monotonic()
    response = web_without_broker.session.post(
        f"{web_without_broker.url}/api/registers/", json=register_body(advertise=True), timeout=30
    )
    elapsed = time.monotonic() - started

    # then
    assert response.status_code == 201
    register_id = response.json()["id"]
    assert Register.objects.filter(pk=register_id, advertise=True).exists()
    wait_until(lambda: web_without_broker.deferred(register_id), timeout=5, message="the deferred push logged")
    assert elapsed < 3, f"the request waited {elapsed:.1f} s on the broker"


def test_turning_advertise_off_answers_200_while_the_broker_is_down(web_without_broker: WebNode) -> None:
    # given
    register = make_register(advertise=True)

    # when
    response = web_without_broker.session.patch(
        f"{web_without_broker.url}/api/registers/{register.id}/", json={"advertise": False}, timeout=30
    )

    # then
    assert response.status_code == 200
    assert Register.objects.get(pk=register.id).advertise is False
    wait_until(lambda: web_without_broker.deferred(register.id), timeout=5, message="the deferred push logged")


def test_deleting_a_public_register_answers_204_while_the_broker_is_down(web_without_broker: WebNode) -> None:
    # given
    register = make_register(advertise=True)

    # when
    response = web_without_broker.session.delete(f"{web_without_broker.url}/api/registers/{register.id}/", timeout=30)

    # then
    assert response.status_code == 204
    assert not Register.objects.filter(pk=register.id).exists()
    wait_until(lambda: web_without_broker.deferred(register.id), timeout=5, message="the deferred push logged")


def test_pushes_right_after_a_failed_publish_are_deferred_without_trying_the_broker(
    web_without_broker: WebNode,
) -> None:
    # given: one push has just found the broker down
    web_without_broker.session.post(
        f"{web_without_broker.url}/api/registers/", json=register_body(advertise=True), timeout=30
    )

    # when
    response = web_without_broker.session.post(
        f"{web_without_broker.url}/api/registers/", json=register_body(advertise=True), timeout=30
    )

    # then
    register_id = response.json()["id"]
    wait_until(lambda: web_without_broker.deferred(register_id), timeout=5, message="the deferred push logged")
    [line] = [line for line in web_without_broker.process.log().splitlines() if register_id in line]
    assert "cooling down" in line


def test_creating_a_public_register_succeeds_while_redis_is_down_and_the_push_is_deferred(
    api: APIClient, settings: Any, caplog: pytest.LogCaptureFixture
) -> None:
    # given: the Redis where changes wait for their flush does not answer
    point_coordination_at(settings, f"redis://127.0.0.1:{free_port()}/0")

    # when
    response = api.post("/api/registers/", register_body(advertise=True), format="json")

    # then
    assert response.status_code == 201
    register_id = response.json()["id"]
    assert Register.objects.filter(pk=register_id, advertise=True).exists()
    assert any(f"event=push_deferred register_id={register_id}" in r.getMessage() for r in caplog.records)
