"""The Peer Network page tells registers held by direct peers from those known only through relays.

A node learns a register from a peer it exchanges with (a direct origin) or from a signed
per-origin set another node relayed (an origin it never exchanges with). The live node's store
is written as the gossip code writes it once a set's signature has been checked:
`replace_remote(..., direct=False)` for a relayed origin's set.
"""

from __future__ import annotations

from typing import Any

import pytest
import requests
from django.contrib.auth.models import User
from playwright.sync_api import Locator, Page, expect

from peers.store import AdvertisementInput, AdvertisementStore
from tests.browser.conftest import log_in, screenshot
from tests.conftest import register_id

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

ROWS = "#pn-available-table tbody tr"
DIRECT_PEER = "a" * 32
RELAYED_ORIGIN = "b" * 32


def ad(rid: str, name: str) -> AdvertisementInput:
    return AdvertisementInput(register_id=rid, name=name, description="", latest_version=5, latest_docket_version=1)


def row(page: Page, rid: str) -> Locator:
    return page.locator(f'tr[data-register-id="{rid}"]')


def counts(page: Page, rid: str) -> tuple[Locator, Locator]:
    found = row(page, rid)
    return found.locator('td[data-label="Peers"]'), found.locator('td[data-label="Direct peers"]')


def test_rows_show_direct_peers_beside_all_peers_and_the_relayed_filter_keeps_the_relayed_only(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore, node_api: requests.Session
) -> None:
    # given a local register, a register a direct peer holds, and one known only through a relayed origin
    local, direct, relayed = register_id(), register_id(), register_id()
    response = node_api.post(
        f"{live_server.url}/api/registers/bulk-advertise",
        json={
            "advertisements": [
                {
                    "registerId": local,
                    "isPublic": True,
                    "name": "land-titles",
                    "description": "",
                    "latestVersion": 2,
                    "latestDocketVersion": 1,
                    "isFullReplica": True,
                    "sourceUpdatedAt": "2026-11-24T10:00:00.000001Z",
                }
            ]
        },
    )
    assert response.status_code == 200, response.text
    peer_store.replace_remote(DIRECT_PEER, [ad(direct, "customs-declarations")])
    peer_store.replace_remote(
        RELAYED_ORIGIN,
        [ad(direct, "customs-declarations"), ad(relayed, "vaccine-cold-chain"), ad(local, "land-titles")],
        direct=False,
    )

    # when
    log_in(page, live_server.url, "operator")

    # then each row shows how many peers hold it and how many of them this node exchanges with
    expect(page.locator(ROWS)).to_have_count(3)
    expect(page.get_by_role("columnheader", name="Peers", exact=True)).to_be_visible()
    expect(page.get_by_role("columnheader", name="Direct", exact=True)).to_be_visible()
    for rid, peers, direct_peers in ((direct, "2", "1"), (relayed, "1", "0"), (local, "1", "0")):
        peers_cell, direct_cell = counts(page, rid)
        expect(peers_cell).to_have_text(peers)
        expect(direct_cell).to_have_text(direct_peers)
    screenshot(page, "available-registers-direct-and-relayed")

    # when the operator asks for the registers known only through relays
    page.get_by_label("Known only through relays").check()

    # then the relayed one alone shows (the local one is held by no direct peer either, but is local)
    expect(page.locator(ROWS)).to_have_count(1)
    expect(row(page, relayed)).to_contain_text("vaccine-cold-chain")
    expect(page.locator("#pn-available-shown")).to_have_text("Showing 1 of 3")

    # and with it combined with "Local only", nothing matches, across the whole row
    page.get_by_label("Source").select_option("local")
    expect(page.locator(f"{ROWS} td.pn-no-match")).to_have_text("No register matches the search and filters.")
    expect(page.locator(f"{ROWS} td.pn-no-match")).to_have_attribute("colspan", "9")

    # and without it, all three again
    page.get_by_label("Source").select_option("")
    page.get_by_label("Known only through relays").uncheck()
    expect(page.locator(ROWS)).to_have_count(3)
    expect(page.locator("#pn-available-shown")).to_have_text("")


def test_a_relayed_register_leaves_the_filter_once_a_direct_peer_holds_it(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given a register known only through a relayed origin, the filter on
    relayed = register_id()
    peer_store.replace_remote(RELAYED_ORIGIN, [ad(relayed, "vaccine-cold-chain")], direct=False)
    log_in(page, live_server.url, "operator")
    page.get_by_label("Known only through relays").check()
    expect(page.locator(ROWS)).to_have_count(1)

    # when a peer this node exchanges with advertises it too
    peer_store.replace_remote(DIRECT_PEER, [ad(relayed, "vaccine-cold-chain")])

    # then, at the page's next refresh, it is no longer relayed-only
    expect(page.locator(f"{ROWS} td.pn-no-match")).to_be_visible()
    page.get_by_label("Known only through relays").uncheck()
    peers_cell, direct_cell = counts(page, relayed)
    expect(peers_cell).to_have_text("2")
    expect(direct_cell).to_have_text("1")
