"""Real node processes for tests: gunicorn web processes (and optionally Celery) with their own database.

Each node has its own database (a SQLite file, or a PostgreSQL database when the session runs on
PostgreSQL: see tests/databases.py, both cloned from one migrated once per session), its
own Redis key prefix and its own identity, so several nodes run side by side on one Redis.
"""

from __future__ import annotations

import itertools
import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import Any

import requests

from tests.constants import SERVICE_TOKEN
from tests.databases import NodeDatabase, migrated_sqlite_file
from tests.helpers import wait_until
from tests.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent

_broker_databases = itertools.cycle(range(2, 16))  # each node's Celery gets its own broker database


def base_environment(database: Path | str, redis: RedisServer, prefix: str) -> dict[str, str]:
    """A node process's environment; `database` is a SQLite file or a DATABASE_URL."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("PYTEST", "DJANGO_SETTINGS"))}
    env.update(
        {
            "SORCHA_ENV_FILE": os.devnull,
            "DJANGO_SETTINGS_MODULE": "sorcha_site.settings",
            "DEBUG": "false",
            "SECRET_KEY": "test-node-secret-key",
            "ALLOWED_HOSTS": "*",
            "SORCHA_SERVICE_TOKEN": SERVICE_TOKEN,
            "DATABASE_URL": database if isinstance(database, str) else f"sqlite:///{database}",
            "REDIS_URL": redis.url,
            "CELERY_BROKER_URL": redis.broker_url(),
            "REDIS_KEY_PREFIX": prefix,
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            # Test nodes talk over loopback: private addresses are opted in (never link-local).
            "GOSSIP_ALLOW_PRIVATE": "true",
        }
    )
    return env


def migrated_database(directory: Path) -> Path:
    """A fresh SQLite database file for one node, copied from one migrated once per test session."""
    return migrated_sqlite_file(directory / "node.sqlite3")


def beat_command(schedule_file: Path) -> list[str]:
    return [str(BIN / "celery"), "-A", "sorcha_site", "beat", "-l", "info", "--schedule", str(schedule_file)]


def worker_command(name: str, *extra: str, concurrency: int = 1) -> list[str]:
    """`celery -A sorcha_site worker` as tests run it: one process, none of the worker-to-worker
    chatter (gossip, mingle, heartbeat) that only slows the start of a test."""
    return [
        str(BIN / "celery"),
        "-A",
        "sorcha_site",
        "worker",
        "-l",
        "info",
        "--concurrency",
        str(concurrency),
        "-n",
        f"{name}@%h",
        "--without-gossip",
        "--without-mingle",
        "--without-heartbeat",
        *extra,
    ]


class Process:
    """One child process with its output kept for the failure report."""

    def __init__(self, name: str, command: list[str], env: dict[str, str]) -> None:
        self.name, self.command, self.env = name, command, env
        self.popen: subprocess.Popen[bytes] | None = None
        self.log: deque[str] = deque(maxlen=200)

    def start(self) -> None:
        self.popen = self._spawn()
        threading.Thread(target=self._drain, args=(self.popen,), daemon=True).start()

    def _spawn(self) -> subprocess.Popen[bytes]:
        # Its own session, so stopping it signals the whole process group (gunicorn and celery fork).
        return subprocess.Popen(
            self.command,
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def _drain(self, popen: subprocess.Popen[bytes]) -> None:
        assert popen.stdout is not None
        for line in popen.stdout:
            self.log.append(line.decode(errors="replace").rstrip())

    @property
    def running(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen is None:
            return
        if self.popen.poll() is None:
            os.killpg(self.popen.pid, sig)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait()
        self.popen = None

    def tail(self, lines: int = 40) -> str:
        return "\n".join(list(self.log)[-lines:])


class Node:
    """A Sorcha node's web process (gunicorn) on a free port; more processes can be added."""

    def __init__(self, name: str, redis: RedisServer, **settings: Any) -> None:
        self.name = name
        self.directory = Path(tempfile.mkdtemp(prefix=f"sorcha-node-{name}-"))
        self.database = NodeDatabase(self.directory)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.prefix = f"node-{name}-{os.urandom(4).hex()}"
        self.env = base_environment(self.database.url, redis, self.prefix)
        self.env.update(
            {
                "CELERY_BROKER_URL": f"redis://127.0.0.1:{redis.port}/{next(_broker_databases)}",
                "NODE_NAME": name,
                "PEER_PUBLIC_URL": self.url,
                "PEER_SERVICE_URL": self.url,
                "GOSSIP_TRIGGER_DELAY": "0.1",
                "GOSSIP_BACKOFF_BASE": "0.5",
                "GOSSIP_BACKOFF_MAX": "2",
                "STORE_BREAKER_COOLDOWN": "0.3",
            }
        )
        self.env.update({key: str(value) for key, value in settings.items()})
        self.processes: dict[str, Process] = {}
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {SERVICE_TOKEN}"

    def add_process(self, name: str, command: list[str], **env: str) -> Process:
        process = Process(f"{self.name}/{name}", command, {**self.env, **env})
        self.processes[name] = process
        return process

    def start_web(self, workers: int = 1) -> None:
        process = self.processes.get("web") or self.add_process(
            "web",
            [
                str(BIN / "gunicorn"),
                "sorcha_site.wsgi:application",
                "--bind",
                f"127.0.0.1:{self.port}",
                "--workers",
                str(workers),
                "--threads",
                "4",
                "--graceful-timeout",
                "2",
            ],
        )
        process.start()
        wait_until(self.healthy, timeout=30, message=f"{self.name} web never became healthy\n{process.tail()}")

    def start_worker(self, *extra: str, name: str = "worker") -> Process:
        process = self.processes.get(name) or self.add_process(
            name, worker_command(f"{self.name}-{name}-{os.urandom(3).hex()}", *extra)
        )
        process.start()
        return process

    def start_beat(self) -> Process:
        process = self.processes.get("beat") or self.add_process(
            "beat", beat_command(self.directory / "celerybeat-schedule")
        )
        process.start()
        return process

    def healthy(self) -> bool:
        try:
            return self.session.get(f"{self.url}/healthz", timeout=1).status_code == 200
        except requests.RequestException:
            return False

    def stop(self, name: str = "web", sig: int = signal.SIGTERM) -> None:
        self.processes[name].stop(sig)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()

    def drop_database(self) -> None:
        """Drop the node's PostgreSQL database (a SQLite file goes with the node's directory)."""
        self.database.drop()

    def logs(self) -> str:
        return "\n".join(f"--- {process.name}\n{process.tail()}" for process in self.processes.values())

    # ------------------------------------------------------------ API helpers
    def api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.url}{path}", timeout=10, **kwargs)

    def available(self) -> list[dict[str, Any]]:
        response = self.api("GET", "/api/registers/available")
        response.raise_for_status()
        return list(response.json())

    def available_ids(self, local: bool | None = None) -> set[str]:
        return {row["registerId"] for row in self.available() if local is None or row["isLocal"] is local}

    def advertise(self, advertisements: list[dict[str, Any]], **body: Any) -> dict[str, Any]:
        response = self.api("POST", "/api/registers/bulk-advertise", json={"advertisements": advertisements, **body})
        response.raise_for_status()
        return dict(response.json())

    def gossip_round(self, respect_backoff: bool = False) -> dict[str, Any]:
        response = self.api("POST", f"/api/peers/round?respectBackoff={str(respect_backoff).lower()}")
        response.raise_for_status()
        return dict(response.json())

    def peers(self) -> list[dict[str, Any]]:
        response = self.api("GET", "/api/peers/")
        response.raise_for_status()
        return list(response.json())


def wait_for(condition: Any, nodes: list[Node], timeout: float = 20, message: str = "") -> Any:
    """wait_until, with every node's log tail in the failure message."""
    try:
        return wait_until(condition, timeout=timeout, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(node.logs() for node in nodes)) from None
