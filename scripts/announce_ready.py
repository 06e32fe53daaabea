"""Under `make run`: one line when the node answers, one when its startup full sync has succeeded.

honcho runs this beside the node's processes (the Procfile's `ready` line). It polls the node
at HOST:PORT: first GET /readyz until it answers 200, then the Register Service's
GET /api/registers/sync-state (with SORCHA_SERVICE_TOKEN) until a full sync has succeeded since
this script started. Each wait is bounded; a node that does not answer in time, or a full sync
that fails, gets a line saying so. Then it waits quietly until honcho stops it, because honcho
stops every process of the Procfile as soon as one of them exits.

Usage: python scripts/announce_ready.py [--ready-timeout S] [--sync-timeout S] [--interval S]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NoReturn

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sorcha_site.local_address import local_url, parse_port

RESPONSE_MAX_BYTES = 64 * 1024  # a sync-state body is a few hundred bytes
REQUEST_TIMEOUT = 3.0


class Node:
    """The node this script watches, over HTTP with the API token."""

    def __init__(self, url: str, token: str) -> None:
        self.url = url
        self.session = requests.Session()
        if token:
            self.session.headers["Authorization"] = f"Bearer {token}"

    def get(self, path: str) -> tuple[int, Any]:
        """Status and JSON body (None when there is none) of GET path; redirects are not followed."""
        with self.session.get(
            f"{self.url}{path}", timeout=REQUEST_TIMEOUT, allow_redirects=False, stream=True
        ) as response:
            body = response.raw.read(RESPONSE_MAX_BYTES + 1, decode_content=True)
            if len(body) > RESPONSE_MAX_BYTES:
                raise ValueError(f"GET {path} answered more than {RESPONSE_MAX_BYTES} bytes")
            try:
                return response.status_code, json.loads(body)
            except ValueError:
                return response.status_code, None

    def ready(self) -> bool:
        try:
            return self.get("/readyz")[0] == 200
        except (requests.RequestException, ValueError):
            return False


def say(line: str) -> None:
    print(line, flush=True)


def wait_for_ready(node: Node, timeout: float, interval: float) -> bool:
    deadline = time.monotonic() + timeout
    while not node.ready():
        if time.monotonic() > deadline:
            say(
                f"The node at {node.url}/ did not answer GET /readyz within {timeout:g} s; see the web process's lines."
            )
            return False
        time.sleep(interval)
    say(f"Sorcha node is up at {node.url}/ (it answers its health check); waiting for the startup full sync...")
    return True


def succeeded_since(state: dict[str, Any], started: datetime) -> bool:
    moment = state.get("lastSuccessAt")
    return isinstance(moment, str) and datetime.fromisoformat(moment) > started


def failed_since(state: dict[str, Any], started: datetime) -> bool:
    moment = state.get("lastAttemptAt")
    return (
        state.get("status") in ("retrying", "failed")
        and isinstance(moment, str)
        and datetime.fromisoformat(moment) > started
    )


def wait_for_full_sync(node: Node, peer_service_url: str, started: datetime, timeout: float, interval: float) -> None:
    deadline = time.monotonic() + timeout
    told_failure = False
    last_problem = ""
    while time.monotonic() <= deadline:
        try:
            status, state = node.get("/api/registers/sync-state")
        except (requests.RequestException, ValueError) as exc:
            status, state, last_problem = 0, None, repr(exc)
        if status in (401, 403):
            say(
                f"Cannot read the full sync's state: GET /api/registers/sync-state answered {status} "
                "(check SORCHA_SERVICE_TOKEN)."
            )
            return
        if status == 200 and isinstance(state, dict):
            if succeeded_since(state, started):
                say(
                    f"Startup full sync succeeded: {state.get('registersPushed')} public registers pushed to the "
                    f"Peer Service at {peer_service_url}. The node is ready."
                )
                return
            if failed_since(state, started) and not told_failure:
                told_failure = True
                error = str(state.get("lastError"))[:300]
                say(
                    f"The startup full sync to {peer_service_url} failed and is retried: {error} "
                    "(PEER_SERVICE_URL follows HOST and PORT unless set in the environment or .env)."
                )
        elif status:
            last_problem = f"GET /api/registers/sync-state answered {status}"
        # Once a failure is told, the retries take a while: fewer polls, fewer lines in the web's access log.
        time.sleep(interval * (10 if told_failure else 1))
    detail = f" (last: {last_problem})" if last_problem else ""
    say(f"No full sync succeeded within {timeout:g} s{detail}; see the worker's event=full_sync_ lines.")


def idle() -> NoReturn:
    """Wait until honcho stops us: exiting now would stop the whole node."""
    while True:
        signal.pause()


def stop(signum: int, frame: Any) -> NoReturn:
    sys.exit(0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ready-timeout", type=float, default=120.0, help="seconds to wait for GET /readyz")
    parser.add_argument("--sync-timeout", type=float, default=600.0, help="seconds to wait for a full sync")
    parser.add_argument("--interval", type=float, default=1.0, help="seconds between polls")
    options = parser.parse_args()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    started = datetime.now(UTC)
    try:
        url = local_url(os.environ.get("HOST", "127.0.0.1"), parse_port(os.environ.get("PORT", "8000")))
        node = Node(url, os.environ.get("SORCHA_SERVICE_TOKEN", ""))
        if wait_for_ready(node, options.ready_timeout, options.interval) and os.environ.get(
            "SORCHA_SERVICE", "all"
        ).strip().lower() in ("all", "register"):
            peer_service_url = os.environ.get("PEER_SERVICE_URL") or url
            wait_for_full_sync(node, peer_service_url, started, options.sync_timeout, options.interval)
    except Exception as exc:  # a watcher's bug must not stop the node it watches (honcho would)
        say(f"announce_ready stopped watching: {exc!r}")
    idle()


if __name__ == "__main__":
    main()
