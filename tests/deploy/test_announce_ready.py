"""scripts/announce_ready.py, the `ready` line of the Procfile, against a real node's processes.

The node is gunicorn and a Celery worker on the session's Redis with a database of its own, started
as `make run` starts them: HOST and PORT set, PEER_SERVICE_URL left to follow them.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator

import pytest

from tests.nodes import BIN, ROOT, Node, Process, wait_for, worker_command
from tests.plugin import SESSION_REDIS
from tests.redis_server import free_port

UP = "Sorcha node is up at "
SYNCED = "Startup full sync succeeded: "
FAILED = "The startup full sync to "
SYNC_STATE_POLL = "GET /api/registers/sync-state"


@pytest.fixture
def node() -> Iterator[Node]:
    """A node as `make run` configures it: HOST and PORT, no PEER_SERVICE_URL; its web logs each request."""
    node = Node("ready", SESSION_REDIS)
    del node.env["PEER_SERVICE_URL"]
    node.env.update({"HOST": "127.0.0.1", "PORT": str(node.port)})
    web = [str(BIN / "gunicorn"), "sorcha_site.wsgi:application", "--bind", f"127.0.0.1:{node.port}"]
    node.add_process("web", [*web, "--workers", "1", "--threads", "4", "--access-logfile", "-"])
    yield node
    node.stop_all()
    node.drop_database()
    shutil.rmtree(node.directory, ignore_errors=True)


def start_watcher(node: Node, **env: str) -> Process:
    watcher = node.add_process(
        "ready", [sys.executable, str(ROOT / "scripts" / "announce_ready.py"), "--interval", "0.2"], **env
    )
    watcher.start()
    return watcher


def lines(watcher: Process, start: str) -> list[str]:
    return [line for line in watcher.log if line.startswith(start)]


def polled_sync_state(node: Node) -> bool:
    return any(SYNC_STATE_POLL in line for line in node.processes["web"].log)


def create_register(node: Node, name: str, advertise: bool) -> str:
    response = node.api("POST", "/api/registers/", json={"name": name, "advertise": advertise})
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


def test_it_says_when_the_node_answers_then_when_the_startup_full_sync_has_succeeded(node: Node) -> None:
    # given: the watcher starts first, as honcho starts every line at once
    watcher = start_watcher(node)
    node.start_web()
    wait_for(lambda: lines(watcher, UP), [node], timeout=30, message="the node-is-up line")
    public = {create_register(node, name, advertise=True) for name in ("alpha", "beta")}
    create_register(node, "gamma", advertise=False)
    wait_for(lambda: polled_sync_state(node), [node], timeout=30, message="a poll of the sync state")
    assert lines(watcher, SYNCED) == [], "no worker has run a full sync yet"

    # when
    node.start_worker()

    # then
    synced = wait_for(lambda: lines(watcher, SYNCED), [node], timeout=60, message="the full-sync line")
    assert lines(watcher, UP) == [
        f"{UP}{node.url}/ (it answers its health check); waiting for the startup full sync..."
    ]
    assert synced == [f"{SYNCED}2 public registers pushed to the Peer Service at {node.url}. The node is ready."]
    assert [line for line in watcher.log if line.startswith((UP, SYNCED))] == [*lines(watcher, UP), *synced]
    # PEER_SERVICE_URL followed HOST and PORT in the worker: this node's own Peer Service has them
    assert node.available_ids(local=True) == public
    assert watcher.running, "exiting would make honcho stop the whole node"


def test_a_full_sync_of_an_earlier_run_is_not_announced_and_a_failing_one_is(node: Node) -> None:
    # given: a full sync that succeeded before this run
    node.start_web()
    create_register(node, "alpha", advertise=True)
    earlier = subprocess.run(
        [str(BIN / "python"), "manage.py", "resync"], cwd=ROOT, env=node.env, capture_output=True, text=True, timeout=60
    )
    assert earlier.returncode == 0, earlier.stderr
    unreachable = f"http://127.0.0.1:{free_port()}"
    watcher = start_watcher(node, PEER_SERVICE_URL=unreachable)
    wait_for(lambda: lines(watcher, UP), [node], timeout=30, message="the node-is-up line")
    wait_for(lambda: polled_sync_state(node), [node], timeout=30, message="a poll of the sync state")

    # when: this run's startup full sync goes where nothing answers
    node.add_process("worker", worker_command("ready-worker"), PEER_SERVICE_URL=unreachable).start()

    # then
    failed = wait_for(lambda: lines(watcher, FAILED), [node], timeout=60, message="the failed-sync line")
    assert failed[0].startswith(f"{FAILED}{unreachable} failed and is retried: "), failed
    assert lines(watcher, SYNCED) == []
    assert watcher.running


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_stopped_by_honcho_or_ctrl_c_it_exits_quietly(node: Node, sig: signal.Signals) -> None:
    node.start_web()
    watcher = subprocess.Popen(
        [sys.executable, str(ROOT / "scripts" / "announce_ready.py"), "--interval", "0.2"],
        cwd=ROOT,
        env=node.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert watcher.stdout is not None
    assert watcher.stdout.readline().startswith(UP)

    watcher.send_signal(sig)

    rest, _ = watcher.communicate(timeout=10)
    assert watcher.returncode == 0
    assert "Traceback" not in rest, rest
