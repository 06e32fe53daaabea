"""`make run`: what the Makefile writes into .env, what it hands honcho, and the Procfile under honcho.

The Procfile test starts honcho as `make run` does (HOST, PORT and NODE_PORT set), with the web,
worker and ready lines of the real Procfile, on the session's Redis and a database of its own;
`-e /dev/null` keeps a developer's .env out of it.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from tests.helpers import wait_until
from tests.nodes import BIN, ROOT, Node
from tests.plugin import SESSION_REDIS
from tests.redis_server import free_port

MAKEFILE = ROOT / "Makefile"


def make(*args: str, directory: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", "-C", str(directory), "-f", str(MAKEFILE), f"PYTHON={sys.executable}", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_env_target_writes_the_two_secrets_and_nothing_else(tmp_path: Path) -> None:
    result = make(".env", "HOST=127.0.0.1", "PORT=8011", directory=tmp_path)

    assert result.returncode == 0, result.stderr
    env_file = tmp_path / ".env"
    names = [line.partition("=")[0] for line in env_file.read_text().splitlines() if line.strip()]
    assert names == ["SECRET_KEY", "SORCHA_SERVICE_TOKEN"]
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600


def test_run_hands_honcho_host_and_port_and_the_nodes_port_for_every_line() -> None:
    result = make("-n", "run", "HOST=127.0.0.1", "PORT=8011")

    assert result.returncode == 0, result.stderr
    honcho = [line for line in result.stdout.splitlines() if "honcho start -f Procfile" in line]
    assert len(honcho) == 1, result.stdout
    assert " HOST=127.0.0.1 PORT=8011 NODE_PORT=8011 " in honcho[0]


class Honcho:
    """honcho, started as `make run` starts it or by `make run` itself, its output kept; stopping it
    (SIGINT to its process group, as Ctrl-C would) stops every process it started."""

    def __init__(self, command: list[str], env: dict[str, str], cwd: Path = ROOT) -> None:
        self.popen = subprocess.Popen(
            command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.lines: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()

    def _drain(self) -> None:
        assert self.popen.stdout is not None
        for raw in self.popen.stdout:
            self.lines.append(raw.decode(errors="replace").rstrip())

    def said(self, process: str, start: str) -> list[str]:
        """What one process printed (without honcho's `time name.1 | ` prefix) that starts with `start`."""
        pattern = re.compile(rf"^\S+ {re.escape(process)}\.1\s+\| (.*)$")
        said = (match.group(1) for match in map(pattern.match, list(self.lines)) if match)
        return [line for line in said if line.startswith(start)]

    def children(self) -> list[int]:
        return [int(pid) for pid in re.findall(r" started \(pid=(\d+)\)", "\n".join(self.lines))]

    def stop(self) -> None:
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, signal.SIGINT)
            try:
                self.popen.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        for pid in self.children():  # each in a session of its own: gone with honcho, or killed here
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)

    def wait_for(self, condition: Callable[[], object], timeout: float) -> None:
        try:
            wait_until(condition, timeout=timeout)
        except AssertionError as exc:
            raise AssertionError(f"{exc}\n{self.tail()}") from None

    def tail(self) -> str:
        return "\n".join(self.lines[-80:])


@pytest.fixture
def node() -> Iterator[Node]:
    """A node's environment and database, with PEER_SERVICE_URL left unset as `make run` leaves it."""
    node = Node("make-run", SESSION_REDIS)
    del node.env["PEER_SERVICE_URL"]
    yield node
    node.drop_database()
    shutil.rmtree(node.directory, ignore_errors=True)


def test_under_honcho_the_procfile_says_ready_twice_and_pushes_to_its_own_port(node: Node) -> None:
    # given: honcho gives the worker and ready lines PORT+100 and PORT+200 of their own
    env = {**node.env, "PATH": f"{BIN}:{os.environ['PATH']}", "HOST": "127.0.0.1", "PORT": str(node.port)}
    env["NODE_PORT"] = str(node.port)

    # when
    honcho = Honcho([str(BIN / "honcho"), "start", "-f", "Procfile", "-e", os.devnull, "web", "worker", "ready"], env)
    try:
        # then
        up = f"Sorcha node is up at {node.url}/ (it answers its health check); waiting for the startup full sync..."
        synced = f"Startup full sync succeeded: 0 public registers pushed to the Peer Service at {node.url}."
        synced += " The node is ready."
        honcho.wait_for(lambda: honcho.said("ready", "Startup full sync "), timeout=90)
        assert honcho.said("ready", "S") == [up, synced], honcho.tail()
        # a change is pushed by the worker to this node's own Peer Service, not to PORT+100 or 8000
        created = node.api("POST", "/api/registers/", json={"name": "alpha", "advertise": True})
        assert created.status_code == 201, created.text
        honcho.wait_for(lambda: created.json()["id"] in node.available_ids(local=True), timeout=30)
        assert honcho.popen.poll() is None, "the ready line exiting would have stopped every process"
    finally:
        honcho.stop()

    assert honcho.children(), honcho.tail()
    for pid in honcho.children():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


# What `make run` needs of a clone: a copy of this working tree's, with this venv already installed.
CLONE = ["Makefile", "Procfile", "manage.py", "requirements.txt", "requirements-dev.txt"]
CLONE_PACKAGES = ["scripts", "sorcha_site", "registers", "peers", "tasks"]
# Settings of the test session or of the machine that a fresh clone would not have.
NOT_IN_A_FRESH_SHELL = {"HOST", "PORT", "NODE_PORT", "SORCHA_ENV_FILE", "DATABASE_URL", "SECRET_KEY", "DEBUG"}


@pytest.fixture
def clone(tmp_path: Path) -> Path:
    tree = tmp_path / "sorcha"
    tree.mkdir()
    for name in CLONE:
        shutil.copy2(ROOT / name, tree / name)
        os.utime(tree / name, (0, 0))  # older than the venv's install stamp: make installs nothing
    for name in CLONE_PACKAGES:
        shutil.copytree(ROOT / name, tree / name, ignore=shutil.ignore_patterns("__pycache__"))
    (tree / ".venv").symlink_to(ROOT / ".venv")
    return tree


def test_make_run_on_a_free_port_announces_the_node_then_its_full_sync_there(clone: Path) -> None:
    # given: a shell with the session's Redis as the node's, so nothing touches the Redis on 6379
    port = free_port()
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PYTEST", "DJANGO_", "SORCHA_", "PEER_", "REDIS_", "CELERY_", "GOSSIP_"))
        and key not in NOT_IN_A_FRESH_SHELL
    }
    env.update(
        REDIS_URL=SESSION_REDIS.url,
        CELERY_BROKER_URL=SESSION_REDIS.broker_url(),
        REDIS_KEY_PREFIX=f"make-run-{os.urandom(4).hex()}",
    )
    url = f"http://127.0.0.1:{port}"

    # when
    run = Honcho(["make", "run", f"PORT={port}", f"PYTHON={sys.executable}"], env, cwd=clone)
    try:
        # then
        run.wait_for(lambda: run.said("ready", "Startup full sync "), timeout=120)
        assert run.said("ready", "S") == [
            f"Sorcha node is up at {url}/ (it answers its health check); waiting for the startup full sync...",
            f"Startup full sync succeeded: 0 public registers pushed to the Peer Service at {url}. The node is ready.",
        ], run.tail()
        secrets = dict(line.split("=", 1) for line in (clone / ".env").read_text().splitlines())
        assert list(secrets) == ["SECRET_KEY", "SORCHA_SERVICE_TOKEN"]
        api = requests.Session()
        api.headers["Authorization"] = f"Bearer {secrets['SORCHA_SERVICE_TOKEN']}"
        created = api.post(f"{url}/api/registers/", json={"name": "alpha", "advertise": True}, timeout=10)
        assert created.status_code == 201, created.text
        local = f"{url}/api/registers/available"
        run.wait_for(
            lambda: created.json()["id"] in {row["registerId"] for row in api.get(local, timeout=10).json()},
            timeout=30,
        )
    finally:
        run.stop()

    assert len(run.children()) == 4, run.tail()
    for pid in run.children():
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def test_the_screenshot_script_without_the_development_packages_says_to_run_make_install_dev() -> None:
    """`make run` installs requirements.txt only; `-S` leaves out every installed package the same way."""
    result = subprocess.run(
        [sys.executable, "-S", str(ROOT / "docs" / "screenshots.py")], capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "make install-dev" in lines[0] and "playwright" in lines[0]
