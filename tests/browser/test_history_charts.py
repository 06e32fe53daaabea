"""History at a glance, in Chromium: the Sync Status charts and runs table, and each peer's last exchanges.

The data is recorded by the same functions the node's full syncs, beat and gossip use; the page
reads it from the live node's API and draws it with the vendored uPlot.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from playwright.sync_api import Page, expect

from peers import history
from peers.models import Peer, PoolSample
from peers.store import AdvertisementStore
from registers import sync_history
from registers.peer_client import PeerServiceRejected, PeerServiceUnavailable
from tests.browser.conftest import log_in, screenshot

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

COUNTS = {"processed": 4, "added": 1, "updated": 0, "removed": 0, "unchanged": 3, "held": 0, "stale": 0}
# The outcome colours of history.js, as drawn on the canvas.
COLOURS = {
    "success": (0x2E, 0x7D, 0x32),
    "retrying": (0xE6, 0x51, 0x00),
    "failed": (0xC6, 0x28, 0x28),
    "local": (0x15, 0x65, 0xC0),
    "remote": (0x8E, 0x24, 0xAA),
}

# Pixels of the chart's canvas within a few levels of each colour (anti-aliased edges aside).
COUNT_PIXELS = """([figureId, colours]) => {
    const canvas = document.querySelector(`#${figureId} canvas`);
    const { data } = canvas.getContext("2d").getImageData(0, 0, canvas.width, canvas.height);
    const counts = {};
    for (const [name, rgb] of Object.entries(colours)) {
        let count = 0;
        for (let i = 0; i < data.length; i += 4) {
            if (data[i + 3] > 250 && Math.abs(data[i] - rgb[0]) < 6 && Math.abs(data[i + 1] - rgb[1]) < 6
                && Math.abs(data[i + 2] - rgb[2]) < 6) {
                count += 1;
            }
        }
        counts[name] = count;
    }
    return counts;
}"""


def record_runs(outcomes: list[str], hours_ago: float = 20) -> None:
    """Full syncs spread over the hours before now, in the given outcomes."""
    start = timezone.now() - timedelta(hours=hours_ago)
    step = timedelta(hours=hours_ago / (len(outcomes) + 1))
    for index, outcome in enumerate(outcomes, start=1):
        started_at = start + step * index
        if outcome == "success":
            sync_history.record_success("periodic", started_at, 0.2 * index, 4, COUNTS)
        elif outcome == "retrying":
            error = PeerServiceUnavailable("could not connect to the Peer Service")
            sync_history.record_failure("startup", started_at, 0.1, error, will_retry=True)
        else:
            refused = PeerServiceRejected("POST", "/api/registers/bulk-advertise", 401, "bad token")
            sync_history.record_failure("manual", started_at, 0.3, refused, will_retry=False)


def record_samples(count: int) -> None:
    now = timezone.now()
    PoolSample.objects.bulk_create(
        PoolSample(sampled_at=now - timedelta(minutes=index), local=5 + index % 3, remote=20 + index % 7)
        for index in range(count, 0, -1)
    )


def open_sync_status(page: Page, base_url: str) -> None:
    log_in(page, base_url, "operator")
    page.get_by_role("tab", name="Sync Status").click()
    expect(page.get_by_role("tab", name="Sync Status")).to_have_attribute("aria-selected", "true")


def pixels(page: Page, figure_id: str, *names: str) -> dict[str, int]:
    result: dict[str, int] = page.evaluate(COUNT_PIXELS, [figure_id, {name: COLOURS[name] for name in names}])
    return result


# ------------------------------------------------------------------------------------ full syncs
def test_the_full_sync_chart_draws_each_run_of_the_day_coloured_by_its_outcome(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given: seven runs within the day, and one from the day before (listed, not drawn)
    record_runs(["failed"], hours_ago=52)  # at 26 hours ago
    record_runs(["success", "success", "retrying", "success", "failed", "success", "failed"])

    # when
    open_sync_status(page, live_server.url)

    # then
    chart = page.locator("#pn-sync-chart")
    expect(chart).to_have_attribute("data-points", "7")
    expect(chart).to_have_attribute("data-points-success", "4")
    expect(chart).to_have_attribute("data-points-retrying", "1")
    expect(chart).to_have_attribute("data-points-failed", "2")
    expect(chart.locator(".pn-chart-summary")).to_have_text(
        "7 full syncs in the last day: 4 succeeded, 1 retrying, 2 failed."
    )
    drawn = pixels(page, "pn-sync-chart", "success", "retrying", "failed")
    assert all(count > 0 for count in drawn.values()), drawn
    screenshot(page, "sync-status-history")


def test_a_day_of_only_successes_draws_no_failure_colour(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given
    record_runs(["success"] * 5)

    # when
    open_sync_status(page, live_server.url)

    # then
    expect(page.locator("#pn-sync-chart")).to_have_attribute("data-points", "5")
    drawn = pixels(page, "pn-sync-chart", "success", "retrying", "failed")
    assert drawn["success"] > 0 and drawn["retrying"] == 0 and drawn["failed"] == 0, drawn


def test_the_runs_table_lists_the_last_runs_newest_first_with_their_counts_and_errors(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given: more runs than the table shows
    record_runs(["success"] * 22 + ["failed"])

    # when
    open_sync_status(page, live_server.url)

    # then
    rows = page.locator("#pn-sync-runs tbody tr")
    expect(rows).to_have_count(20)
    expect(page.locator("#pn-sync-runs caption")).to_have_text("The last 20 of 23 full syncs kept")
    expect(rows.first).to_have_attribute("data-outcome", "failed")
    expect(rows.first.locator('[data-label="Error"]')).to_have_text(
        "POST /api/registers/bulk-advertise was refused with HTTP 401: bad token"
    )
    expect(rows.nth(1).locator('[data-label="Added"]')).to_have_text("1")
    expect(rows.nth(1).locator('[data-label="Unchanged"]')).to_have_text("3")


def test_a_new_run_appears_in_the_chart_and_table_without_a_reload(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given
    record_runs(["success", "success"])
    open_sync_status(page, live_server.url)
    expect(page.locator("#pn-sync-chart")).to_have_attribute("data-points", "2")

    # when
    sync_history.record_success("manual", timezone.now(), 0.4, 4, COUNTS)

    # then
    expect(page.locator("#pn-sync-chart")).to_have_attribute("data-points", "3")
    expect(page.locator("#pn-sync-runs tbody tr").first.locator('[data-label="Reason"]')).to_have_text("manual")


# ------------------------------------------------------------------------------------- pool size
def test_the_pool_chart_draws_every_sample_of_the_day_for_local_and_remote(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given: forty samples within the day, one from the day before
    record_samples(40)
    PoolSample.objects.create(sampled_at=timezone.now() - timedelta(days=1, hours=1), local=99, remote=99)

    # when
    open_sync_status(page, live_server.url)

    # then
    chart = page.locator("#pn-pool-chart")
    expect(chart).to_have_attribute("data-points", "40")
    expect(chart).to_have_attribute("data-points-local", "40")
    expect(chart).to_have_attribute("data-points-remote", "40")
    expect(chart.locator(".pn-chart-summary")).to_contain_text("40 samples in the last day")
    drawn = pixels(page, "pn-pool-chart", "local", "remote")
    assert drawn["local"] > 0 and drawn["remote"] > 0, drawn


def test_without_samples_the_pool_chart_says_when_they_come(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # when
    open_sync_status(page, live_server.url)

    # then
    chart = page.locator("#pn-pool-chart")
    expect(chart).to_have_attribute("data-points", "0")
    expect(chart.locator(".pn-chart-summary")).to_have_text(
        "No sample in the last day yet (the beat samples the pool once a minute)."
    )


# ------------------------------------------------------------------------------------- exchanges
def test_the_peers_tab_shows_each_peers_last_exchanges_and_keeps_them_open_across_refreshes(
    page: Page, live_server: Any, operator: User, peer_store: AdvertisementStore
) -> None:
    # given
    peer = Peer.objects.create(url="http://harbour.example.org", name="harbour", peer_id="ab" * 16)
    start = timezone.now() - timedelta(minutes=10)
    history.record_exchange(
        peer,
        "outbound",
        "ok",
        start,
        0.04,
        history.ExchangeTally(bytes_sent=900, bytes_received=4_096, advertisements=3),
    )
    history.record_exchange(
        peer, "outbound", "unreachable", start + timedelta(minutes=2), 3.0, history.ExchangeTally(error="timed out")
    )
    history.record_exchange(
        peer,
        "inbound",
        "ok",
        start + timedelta(minutes=4),
        0.02,
        history.ExchangeTally(advertisements=3, digest_only=True),
    )
    log_in(page, live_server.url, "operator")

    # when
    page.get_by_role("tab", name="Peers").click()
    row = page.locator(f'#pn-peers-table tbody tr[data-peer-pk="{peer.pk}"]')
    expect(row.locator(".pn-exchange-mark")).to_have_count(3)
    expect(row.locator(".pn-exchange-count")).to_have_text("2/3 ok")
    row.locator(".pn-exchanges-toggle").click()

    # then: newest first, in a row of their own below the peer's
    exchanges = page.locator(f'tr[data-exchanges-of="{peer.pk}"] .pn-exchanges-table tbody tr')
    expect(exchanges).to_have_count(3)
    expect(exchanges.nth(0)).to_contain_text("3 (digest)")
    expect(exchanges.nth(1)).to_contain_text("timed out")
    expect(exchanges.nth(2)).to_contain_text("4.0 kB")
    expect(exchanges.nth(2)).to_contain_text("900 B")
    expect(row.get_by_role("button", name="Ban peer harbour", exact=True)).to_be_in_viewport()
    refreshes = int(page.locator("#peer-network").get_attribute("data-refreshes") or 0)
    expect(page.locator("#peer-network")).not_to_have_attribute("data-refreshes", str(refreshes))
    expect(exchanges).to_have_count(3)
    expect(exchanges.first).to_be_visible()
    screenshot(page, "peers-exchanges")
