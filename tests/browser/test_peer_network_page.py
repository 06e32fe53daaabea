"""The admin's Peer Network page in Chromium, against a live node with a real Redis."""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, Route, expect

from peers import store as store_module
from peers.models import Peer
from peers.store import AdvertisementInput, AdvertisementStore
from tests.browser.conftest import PAGE_PATH, PASSWORD, log_in, screenshot
from tests.conftest import point_store_at, register_id
from tests.redis_server import RedisServer

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = "#pn-available-table tbody tr"


def local_advertisement(name: str, **fields: Any) -> dict[str, Any]:
    """One register as the Register Service states it to the Peer Service."""
    return {
        "registerId": register_id(),
        "isPublic": True,
        "name": name,
        "description": f"{name} description",
        "latestVersion": 3,
        "latestDocketVersion": 1,
        "isFullReplica": True,
        "sourceUpdatedAt": "2026-11-24T10:00:00.000001Z",
        **fields,
    }


def advertise_locally(node_api: requests.Session, base_url: str, advertisements: list[dict[str, Any]]) -> None:
    response = node_api.post(f"{base_url}/api/registers/bulk-advertise", json={"advertisements": advertisements})
    assert response.status_code == 200, response.text


def advertise_remotely(store: AdvertisementStore, peer_id: str, *names: str) -> list[str]:
    """A peer's signed gossip, as the store receives it once the signature has been checked."""
    ids = [register_id() for _ in names]
    store.replace_remote(
        peer_id,
        [
            AdvertisementInput(register_id=rid, name=name, description="", latest_version=7, latest_docket_version=2)
            for rid, name in zip(ids, names, strict=True)
        ],
    )
    return ids


def count(page: Page, name: str) -> str:
    return page.locator(f'[data-count="{name}"]').inner_text()


def open_tab(page: Page, name: str) -> None:
    page.get_by_role("tab", name=name).click()
    expect(page.get_by_role("tab", name=name)).to_have_attribute("aria-selected", "true")


# ------------------------------------------------------------------------------------------- access


def test_a_non_staff_user_cannot_log_in_to_the_page(page: Page, live_server: Any) -> None:
    # given
    User.objects.create_user("visitor", password=PASSWORD)

    # when
    log_in(page, live_server.url, "visitor")

    # then
    expect(page.locator(".errornote")).to_contain_text("staff account")
    assert "/admin/login/" in page.url
    response = page.goto(f"{live_server.url}{PAGE_PATH}")
    assert response is not None
    assert "/admin/login/" in response.url


def test_a_staff_user_without_the_view_permission_is_refused(page: Page, live_server: Any) -> None:
    # given
    User.objects.create_user("clerk", password=PASSWORD, is_staff=True)
    log_in(page, live_server.url, "clerk", next_path="/admin/")

    # when
    response = page.goto(f"{live_server.url}{PAGE_PATH}")

    # then
    assert response is not None and response.status == 403


# ------------------------------------------------------------------------------------------- the tabs


def test_the_page_is_reachable_from_the_admin_index_and_its_tabs_by_keyboard(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given
    log_in(page, live_server.url, "operator", next_path="/admin/")

    # when
    page.get_by_role("link", name="Peer network", exact=True).click()
    expect(page.locator("#pn-updated")).to_contain_text("Checked")  # its script has started
    page.get_by_role("tab", name="Available Registers").focus()
    page.keyboard.press("ArrowRight")

    # then
    expect(page.get_by_role("tab", name="Peers")).to_be_focused()
    expect(page.get_by_role("tab", name="Peers")).to_have_attribute("aria-selected", "true")
    expect(page.get_by_role("tabpanel")).to_have_attribute("id", "pn-panel-peers")
    page.keyboard.press("ArrowRight")
    expect(page.get_by_role("tabpanel")).to_have_attribute("id", "pn-panel-sync")
    assert page.url.endswith("#sync")
    page.keyboard.press("Tab")
    expect(page.locator("#pn-panel-sync")).to_be_focused()


def test_empty_states_explain_what_to_do(page: Page, live_server: Any, operator: User, peer_store: Any) -> None:
    # given an empty node

    # when
    log_in(page, live_server.url, "operator")

    # then
    expect(page.locator("#pn-available-message")).to_contain_text("No registers are advertised yet")
    expect(page.locator("#pn-available-message")).to_contain_text("check Sync Status")
    page.locator("#pn-available-message").get_by_role("link", name="Sync Status").click()
    expect(page.get_by_role("tab", name="Sync Status")).to_have_attribute("aria-selected", "true")
    open_tab(page, "Peers")
    expect(page.locator("#pn-peers-message")).to_contain_text("No peers yet")
    expect(page.locator("#pn-peers-message")).to_contain_text("PEER_SEEDS")


def test_search_and_filters_narrow_the_available_registers(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore, node_api: requests.Session
) -> None:
    # given two local registers, one of them reloaded from Redis and so unverified, and one remote
    land, customs = local_advertisement("land-titles"), local_advertisement("customs-declarations")
    advertise_locally(node_api, live_server.url, [land, customs])
    store_module.reset_store()  # as after a restart: entries come back from Redis, unverified
    advertise_locally(node_api, live_server.url, [land])  # its source refreshes one of them
    advertise_remotely(store_module.get_store(), "b" * 32, "vaccine-cold-chain")
    log_in(page, live_server.url, "operator")
    expect(page.locator(ROWS)).to_have_count(3)

    # when / then: search by name
    page.get_by_label("Search").fill("customs")
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.locator(ROWS).first).to_contain_text("customs-declarations")
    expect(page.locator("#pn-available-shown")).to_have_text("Showing 1 of 3")

    # by id
    page.get_by_label("Search").fill(land["registerId"][:10])
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.locator(ROWS).first).to_contain_text("land-titles")
    page.get_by_label("Search").fill("")

    # local / remote / unverified
    page.get_by_label("Source").select_option("remote")
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.locator(ROWS).first).to_contain_text("vaccine-cold-chain")
    page.get_by_label("Source").select_option("local")
    expect(page.locator(ROWS)).to_have_count(2)
    page.get_by_label("Unverified only").check()
    expect(page.locator(ROWS)).to_have_count(1)
    expect(page.locator(ROWS).first).to_contain_text("customs-declarations")
    expect(page.locator(ROWS).first).to_contain_text("Unverified")
    assert (count(page, "total"), count(page, "local"), count(page, "remote"), count(page, "unverified")) == (
        "3",
        "2",
        "1",
        "1",
    )


def test_a_row_shows_the_short_id_with_the_full_id_on_hover_and_versions(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore, node_api: requests.Session
) -> None:
    # given
    ledger = local_advertisement("ledger", latestVersion=12, latestDocketVersion=4, isFullReplica=False)
    advertise_locally(node_api, live_server.url, [ledger])
    advertise_remotely(peer_store, "c" * 32, "ledger-elsewhere")

    # when
    log_in(page, live_server.url, "operator")

    # then
    row = page.locator(f'tr[data-register-id="{ledger["registerId"]}"]')
    expect(row.locator("code.pn-id")).to_have_text(ledger["registerId"][:8] + "…")
    expect(row.locator("code.pn-id")).to_have_attribute("title", ledger["registerId"])
    expect(row.get_by_role("button", name=f"Copy register id {ledger['registerId']}")).to_be_visible()
    expect(row).to_contain_text("12 · 4")
    expect(row).to_contain_text("Local")
    expect(row).to_contain_text("Verified")
    expect(row.locator("th")).to_contain_text("ledger description")


# ------------------------------------------------------------------------------------------- Peers


def test_a_peer_is_banned_and_unbanned_after_confirming(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given a peer whose registers this node learnt by gossip
    peer_id = "d" * 32
    now = timezone.now()
    Peer.objects.create(
        peer_id=peer_id,
        url="http://127.0.0.1:9/",
        name="node-b",
        last_exchange_at=now,
        last_exchange_result="ok",
        last_seen=now,
        advertisements_received=1,
    )
    advertise_remotely(peer_store, peer_id, "shipping-manifests")
    log_in(page, live_server.url, "operator")
    expect(page.locator(ROWS)).to_have_count(1)
    open_tab(page, "Peers")
    row = page.locator(f'#pn-peers-table tr[data-peer-id="{peer_id}"]')
    expect(row).to_contain_text("node-b")
    screenshot(page, "peers")

    # when the operator changes their mind, nothing happens
    row.get_by_role("button", name="Ban peer node-b", exact=True).click()
    expect(page.get_by_role("dialog")).to_contain_text("Ban node-b?")
    page.get_by_role("dialog").get_by_role("button", name="Cancel").click()
    expect(page.get_by_role("dialog")).to_be_hidden()
    assert not Peer.objects.get(peer_id=peer_id).banned

    # when they confirm
    row.get_by_role("button", name="Ban peer node-b", exact=True).click()
    page.get_by_role("dialog").get_by_role("button", name="Ban peer", exact=True).click()

    # then
    expect(row).to_contain_text("Banned")
    expect(page.locator("#pn-peers-result")).to_contain_text("node-b is banned")
    expect(page.locator(ROWS)).to_have_count(0)
    assert Peer.objects.get(peer_id=peer_id).banned

    # and back
    row.get_by_role("button", name="Unban peer node-b").click()
    page.get_by_role("dialog").get_by_role("button", name="Unban peer", exact=True).click()
    expect(row.get_by_role("button", name="Ban peer node-b", exact=True)).to_be_visible()
    assert not Peer.objects.get(peer_id=peer_id).banned


def test_the_peers_tab_says_when_gossip_is_not_available(page: Page, live_server: Any, operator: User) -> None:
    # given a node process that does not answer /api/peers/ (gossip not deployed)
    page.route("**/api/peers/", lambda route: route.fulfill(status=404, body="{}"))

    # when
    log_in(page, live_server.url, "operator")
    open_tab(page, "Peers")

    # then
    expect(page.locator("#pn-peers-message")).to_have_text("Peer gossip is not available on this node yet.")
    expect(page.locator("#pn-stale")).to_be_hidden()


# ------------------------------------------------------------------------------------------- liveness


def test_the_page_says_its_data_is_stale_while_the_peer_service_is_unreachable(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore, node_api: requests.Session
) -> None:
    # given
    advertise_locally(node_api, live_server.url, [local_advertisement("ledger")])
    log_in(page, live_server.url, "operator")
    expect(page.locator(ROWS)).to_have_count(1)

    # when the Peer Service stops answering
    def unreachable(route: Route) -> None:
        route.abort("connectionrefused")

    page.route("**/api/registers/available", unreachable)

    # then the last data stays, marked stale
    expect(page.locator("#pn-stale")).to_contain_text("Data is stale — Peer Service unreachable")
    expect(page.locator(ROWS)).to_have_count(1)
    screenshot(page, "available-registers-stale")

    # and when it answers again, the banner goes
    page.unroute("**/api/registers/available", unreachable)
    expect(page.locator("#pn-stale")).to_be_hidden()


def test_with_redis_stopped_sync_status_says_degraded_and_registers_still_list(
    page: Page,
    live_server: Any,
    operator: User,
    settings: Any,
    prefix: str,
    private_redis: RedisServer,
    node_api: requests.Session,
) -> None:
    # given a store on a Redis of this test's own
    point_store_at(settings, private_redis.url)
    settings.REDIS_KEY_PREFIX = prefix
    store_module.reset_store()
    try:
        advertise_locally(node_api, live_server.url, [local_advertisement("ledger"), local_advertisement("deeds")])
        log_in(page, live_server.url, "operator")
        expect(page.locator(ROWS)).to_have_count(2)

        # when
        private_redis.stop()

        # then
        open_tab(page, "Sync Status")
        expect(page.locator("#pn-store-status")).to_contain_text("Degraded")
        screenshot(page, "sync-status-degraded")
        open_tab(page, "Available Registers")
        expect(page.locator("#pn-available-degraded")).to_contain_text("served from the Peer Service's memory")
        expect(page.locator(ROWS)).to_have_count(2)
        screenshot(page, "available-registers-degraded")
    finally:
        store_module.reset_store()
