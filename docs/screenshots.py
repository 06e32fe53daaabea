"""Regenerate the README's screenshot of the Available Registers tab: `.venv/bin/python docs/screenshots.py`.

Three real nodes (gunicorn processes on a private Redis) gossip with each other, so the
picture shows node north's own registers next to registers learnt from harbour and
customs, with their real peer counts. Needs redis-server and Debian's chromium.
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
        north.advertise(
            [
                register("land-titles", "Freehold and leasehold titles of the northern district", 1284, 57),
                register("planning-permits", "Building permits and their amendments", 342, 12),
                register("water-rights", "Abstraction licences, renewed yearly", 88, 4, isFullReplica=False),
            ]
        )
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

        with sync_playwright() as driver:
            browser = driver.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1280, "height": 720})
            page.goto(f"{north.url}/admin/login/?next=/admin/peers/peernetwork/")
            page.get_by_label("Username").fill(USERNAME)
            page.get_by_label("Password").fill(PASSWORD)
            page.get_by_role("button", name="Log in").click()
            expect(page.locator("#pn-available-table tbody tr")).to_have_count(6)
            page.screenshot(path=str(OUTPUT), full_page=True)
            browser.close()
        print(f"wrote {OUTPUT.relative_to(ROOT)}")
    finally:
        for node in nodes:
            node.stop_all()
        redis.stop()


if __name__ == "__main__":
    main()
