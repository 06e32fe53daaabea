"""Regenerate the screenshots in docs/: `.venv/bin/python docs/screenshots.py`.

Three real nodes (gunicorn processes on a private Redis) gossip with each other, so the
Available Registers picture shows node north's own registers next to registers learnt from
harbour and customs, with their real peer counts. Needs redis-server and Debian's chromium.

The Sync Status picture shows a day of history. The last minutes are real (full syncs run by
`manage.py resync`, one of them against a Peer Service that is not there, and a pool sample);
the hours before them are recorded through the same functions with earlier times (a full sync
every ten minutes, half an hour of a Peer Service outage, the pool sampled every minute), since a
screenshot cannot wait a day.
"""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

try:
    from playwright.sync_api import expect, sync_playwright

    from tests.nodes import BIN, Node, wait_for
    from tests.redis_server import RedisServer
except ImportError as exc:  # `make run` installs requirements.txt only
    sys.exit(f"docs/screenshots.py needs the development packages ({exc.name} is missing): run make install-dev")

OUTPUT = ROOT / "docs" / "available-registers.png"
SYNC_STATUS_OUTPUT = ROOT / "docs" / "sync-status.png"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
USERNAME, PASSWORD = "operator", "docs-screenshot-password-1"


def register(name: str, description: str, version: int, docket: int, **fields: Any) -> dict[str, Any]:
    return {
        "registerId": uuid.uuid4().hex,
        "isPublic": True,
        "name": name,
        "description": description,
        "latestVersion": version,
        "latestDocketVersion": docket,
        "isFullReplica": True,
        **fields,
    }


def create_superuser(node: Node) -> None:
    subprocess.run(
        [str(BIN / "python"), "manage.py", "createsuperuser", "--noinput", "--username", USERNAME, "--email", ""],
        cwd=ROOT,
        env={**node.env, "DJANGO_SUPERUSER_PASSWORD": PASSWORD},
        check=True,
        capture_output=True,
    )


# Run in north's `manage.py shell`: the day before the real runs, recorded as the node records it.
PAST_DAY = """
import random
from datetime import timedelta
from django.utils import timezone
from peers.models import PoolSample
from registers import sync_history
from registers.peer_client import PeerServiceUnavailable

rng = random.Random(24)
now = timezone.now()
counts = {"processed": 3, "added": 0, "updated": 0, "removed": 0, "unchanged": 3, "held": 0, "stale": 0}
first = {**counts, "added": 3, "unchanged": 0}
sync_history.record_success("startup", now - timedelta(hours=23, minutes=55), 0.31, 3, first)
for minutes in range(23 * 60 + 50, 15, -10):
    started = now - timedelta(minutes=minutes)
    if 14 * 60 <= minutes < 14 * 60 + 30:
        down = PeerServiceUnavailable("could not connect to the Peer Service: Connection refused")
        sync_history.record_failure("periodic", started, rng.uniform(0.004, 0.012), down, will_retry=True)
    else:
        took = rng.uniform(0.03, 0.09) + (0.2 if minutes % 180 == 0 else 0.0)
        sync_history.record_success("periodic", started, took, 3, counts)
def remote(minutes):
    peers = 0 if minutes > 22 * 60 else 1 if minutes > 20 * 60 else 2
    return 2 * peers - (2 if 9 * 60 < minutes < 9 * 60 + 40 else 0)  # harbour away for 40 minutes
PoolSample.objects.bulk_create(
    PoolSample(sampled_at=now - timedelta(minutes=minutes), local=3, remote=remote(minutes))
    for minutes in range(24 * 60 - 1, 5, -1)
)
"""


def manage(node: Node, *args: str, check: bool = True, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env={**node.env, **env},
        check=check,
        capture_output=True,
        text=True,
    )


def create_registers(node: Node, registers: list[dict[str, Any]]) -> None:
    """Through the Register API, so the node's own full syncs carry them."""
    for item in registers:
        body = {
            "name": item["name"],
            "description": item["description"],
            "advertise": True,
            "isFullReplica": item["isFullReplica"],
            "latestVersion": item["latestVersion"],
            "latestDocketVersion": item["latestDocketVersion"],
        }
        node.api("POST", "/api/registers/", json=body).raise_for_status()


def record_recent_history(north: Node) -> None:
    """The last minutes, for real: a full sync that fails (nothing listens), one that succeeds, a pool sample."""
    manage(north, "resync", check=False, PEER_SERVICE_URL="http://127.0.0.1:9")
    manage(north, "resync")
    manage(north, "shell", "-c", "from peers import history; history.sample_pool()")


def main() -> None:
    redis = RedisServer()
    redis.start()
    nodes: list[Node] = []
    try:
        north = Node("north", redis)
        nodes.append(north)
        create_superuser(north)
        north.start_web()
        harbour = Node("harbour", redis, PEER_SEEDS=north.url)
        customs = Node("customs", redis, PEER_SEEDS=north.url)
        nodes += [harbour, customs]
        harbour.start_web()
        customs.start_web()

        shared = register("port-arrivals", "Vessel arrivals and berth allocations", 2210, 96)
        create_registers(
            north,
            [
                register("land-titles", "Freehold and leasehold titles of the northern district", 1284, 57),
                register("planning-permits", "Building permits and their amendments", 342, 12),
                register("water-rights", "Abstraction licences, renewed yearly", 88, 4, isFullReplica=False),
            ],
        )
        manage(north, "shell", "-c", PAST_DAY)
        manage(north, "resync")  # north's registers reach its Peer Service by its own full sync
        harbour.advertise([shared, register("shipping-manifests", "Cargo manifests by voyage", 5120, 230)])
        customs.advertise(
            [
                {**shared, "isFullReplica": False},
                register("customs-declarations", "Import and export declarations", 15003, 611),
            ]
        )
        wait_for(
            lambda: len(north.available()) == 6 and max(row["peerCount"] for row in north.available()) == 2,
            nodes,
            message="north never heard both peers",
        )
        record_recent_history(north)

        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{north.url}/admin/login/?next=/admin/peers/peernetwork/")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("#pn-available-table tbody tr")).to_have_count(6)
            page.screenshot(path=str(OUTPUT), full_page=True)
            page.get_by_role("tab", name="Sync Status").click()
            expect(page.locator("#pn-sync-runs tbody tr")).to_have_count(20)
            expect(page.locator("#pn-sync-chart")).not_to_have_attribute("data-points", "0")
            expect(page.locator("#pn-pool-chart")).not_to_have_attribute("data-points", "0")
            page.screenshot(path=str(SYNC_STATUS_OUTPUT), full_page=True)
            browser.close()
        print(f"wrote {OUTPUT.relative_to(ROOT)} and {SYNC_STATUS_OUTPUT.relative_to(ROOT)}")
    finally:
        for node in nodes:
            node.stop_all()
        redis.stop()


if __name__ == "__main__":
    main()
