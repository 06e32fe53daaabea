"""The Peer Network page showing what the whole node does: Register Service → Celery worker → Peer Service.

A real `celery -A sorcha_site worker` process (Register Service only) consumes this test
session's queues and pushes to the live server, as a node's worker pushes to its Peer Service.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from django.conf import settings as django_settings
from django.contrib.auth.models import User
from playwright.sync_api import Page, expect

from peers.store import AdvertisementInput, AdvertisementStore
from registers.models import Register
from tests.browser.conftest import PAGE_PATH, log_in, screenshot
from tests.conftest import register_id
from tests.databases import url_of
from tests.helpers import wait_until
from tests.nodes import Process, worker_command

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = "#pn-available-table tbody tr"
BIN = Path(sys.executable).parent
LOG_DIR = Path(__file__).resolve().parents[2] / "test-output" / "logs"


@pytest.fixture(scope="module")
def register_worker(live_server: Any, django_db_setup: None) -> Iterator[Process]:
    """A Register Service worker process for this module's tests, pushing to the live server.

    It consumes the queues this test process publishes to (their names carry the session's
    REDIS_KEY_PREFIX) and reads the test database file. Module-scoped, so it never outlives
    these tests and takes no other test's tasks.
    """
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTEST")}
    env.update(
        {
            "SORCHA_SERVICE": "register",
            "DATABASE_URL": url_of(django_settings.DATABASES["default"]),
            "PEER_SERVICE_URL": live_server.url,
            "RESYNC_BACKOFF_MAX": "1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
        }
    )
    worker = Process(
        "register-worker",
        worker_command(f"browser-tests-{os.getpid()}", "--purge"),  # --purge: earlier tests' tasks aren't ours
        env,
    )
    worker.start()
    # Its startup full sync runs first; the tests start once it is over, so it cannot race theirs.
    wait_until(
        lambda: any("event=full_sync_succeeded reason=startup" in line for line in worker.log),
        timeout=30,
        message=f"the worker never finished its startup full sync\n{worker.tail()}",
    )
    yield worker
    worker.stop()
    # Kept for whoever reads a failure: the worker's own account of its pushes and syncs.
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    (LOG_DIR / "register-worker.log").write_text("\n".join(worker.log) + "\n")


@pytest.fixture
def peer_service(register_worker: Process, peer_store: AdvertisementStore) -> AdvertisementStore:
    """The live server's Peer Service on a fresh store, with the worker pushing to it."""
    return peer_store


def create_register(node_api: requests.Session, base_url: str, name: str, advertise: bool) -> dict[str, Any]:
    response = node_api.post(
        f"{base_url}/api/registers/",
        json={"name": name, "description": f"{name} of the test node", "advertise": advertise, "latestVersion": 5},
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


def test_registers_created_through_the_api_appear_with_the_right_counts(
    page: Page, live_server: Any, operator: User, peer_service: AdvertisementStore, node_api: requests.Session
) -> None:
    # given two public registers and a private one on this node, and one learnt from a peer
    public = [create_register(node_api, live_server.url, name, advertise=True) for name in ("deeds", "permits")]
    private = create_register(node_api, live_server.url, "internal-audit", advertise=False)
    peer_service.replace_remote("e" * 32, [AdvertisementInput(register_id=register_id(), name="harbour-manifests")])

    # when
    log_in(page, live_server.url, "operator")

    # then
    expect(page.locator(ROWS)).to_have_count(3)
    for register in public:
        expect(page.locator(f'tr[data-register-id="{register["id"]}"]')).to_contain_text("Local")
    expect(page.locator(f'tr[data-register-id="{private["id"]}"]')).to_have_count(0)
    expect(page.locator('[data-count="total"]')).to_have_text("3")
    expect(page.locator('[data-count="local"]')).to_have_text("2")
    expect(page.locator('[data-count="remote"]')).to_have_text("1")
    expect(page.locator('[data-count="unverified"]')).to_have_text("0")
    expect(page.get_by_role("tab", name="Available Registers")).to_contain_text("3")
    screenshot(page, "available-registers")

    page.set_viewport_size({"width": 400, "height": 800})
    expect(page.locator(ROWS).first).to_be_visible()
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "narrow layout overflows"
    screenshot(page, "available-registers-narrow")
    page.set_viewport_size({"width": 1280, "height": 900})

    page.get_by_role("tab", name="Peers").click()
    expect(page.locator("#pn-panel-peers")).to_be_visible()
    screenshot(page, "peers-empty")
    page.get_by_role("tab", name="Sync Status").click()
    expect(page.locator("#pn-store-status")).to_contain_text("Healthy")
    screenshot(page, "sync-status")


def test_turning_advertise_off_in_the_registers_admin_removes_the_row_without_a_reload(
    page: Page, live_server: Any, operator: User, peer_service: AdvertisementStore, node_api: requests.Session
) -> None:
    # given the Peer Network page open on two public registers
    kept = create_register(node_api, live_server.url, "kept", advertise=True)
    withdrawn = create_register(node_api, live_server.url, "withdrawn", advertise=True)
    log_in(page, live_server.url, "operator")
    expect(page.locator(ROWS)).to_have_count(2)
    page.evaluate("window.__openedOnce = true")
    refreshes_before = page.evaluate("window.peerNetwork.refreshes")

    # when the operator stops advertising one of them in the Registers admin, in another tab
    admin_tab = page.context.new_page()
    admin_tab.goto(f"{live_server.url}/admin/registers/register/")
    admin_tab.locator(f'input[name="_selected_action"][value="{withdrawn["id"]}"]').check()
    admin_tab.get_by_role("combobox", name="Action").select_option(label="Stop advertising selected registers")
    admin_tab.get_by_role("button", name="Go").click()
    expect(admin_tab.locator(".messagelist")).to_contain_text("1 register(s) no longer advertised")
    admin_tab.close()

    # then the row goes at a refresh, and the page was never reloaded
    expect(page.locator(f'tr[data-register-id="{withdrawn["id"]}"]')).to_have_count(0)
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.locator(f'tr[data-register-id="{kept["id"]}"]')).to_be_visible()
    assert page.evaluate("window.__openedOnce") is True
    assert page.evaluate("window.peerNetwork.refreshes") > refreshes_before
    assert page.evaluate("performance.getEntriesByType('navigation').length") == 1
    assert not Register.objects.get(pk=withdrawn["id"]).advertise


def test_resync_now_shows_a_new_successful_manual_attempt(
    page: Page, live_server: Any, operator: User, peer_service: AdvertisementStore
) -> None:
    # given a public register whose advertisement the Peer Service lost (e.g. removed by hand)
    register = Register.objects.create(name="ledger", advertise=True)
    wait_until(lambda: peer_service.local_advertisement(register.id), message="the push never arrived")
    peer_service.remove(register.id)
    log_in(page, live_server.url, "operator", next_path=f"{PAGE_PATH}#sync")
    expect(page.locator("#pn-sync-state")).to_be_visible()

    # when
    page.get_by_role("button", name="Resync now").click()

    # then
    result = page.locator("#pn-resync-result")
    expect(result).to_contain_text("Full sync finished")
    expect(result).to_contain_text("1 register pushed")
    state = page.locator("#pn-sync-state")
    expect(state.locator("tr", has_text="Status")).to_contain_text("success")
    expect(state.locator("tr", has_text="Reason")).to_contain_text("manual")
    expect(state.locator("tr", has_text="Last success")).to_contain_text("just now")
    expect(state.locator("tr", has_text="Result")).to_contain_text("1 added")
    expect(page.locator("#pn-store-status tr", has_text="Last full sync received")).to_contain_text("applied")
    screenshot(page, "sync-status-after-resync")
    page.get_by_role("tab", name="Available Registers").click()
    expect(page.locator(f'tr[data-register-id="{register.id}"]')).to_be_visible()
