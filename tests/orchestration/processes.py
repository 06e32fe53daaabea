"""Real node processes for orchestration tests: Celery workers, beat, `manage.py` commands.

Each process reads the test database (SQLite file or PostgreSQL) and pushes to the test's Peer Service over HTTP.
Its output goes to a log file the test reads: the structured `event=` lines are what it asserts on.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

from django.conf import settings

from tests.databases import url_of
from tests.nodes import beat_command, worker_command

__all__ = ["beat_command", "worker_command"]

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def node_env(peer_service_url: str, prefix: str | None = None, **overrides: str) -> dict[str, str]:
    """The environment of a Register Service process of this test's node."""
    env = dict(os.environ)
    env.update(
        {
            "SORCHA_ENV_FILE": os.devnull,
            "SORCHA_SERVICE": "register",
            "DATABASE_URL": url_of(settings.DATABASES["default"]),
            "PEER_SERVICE_URL": peer_service_url,
            # Its own prefix: its own Celery queues and leases, shared only by this test's processes.
            "REDIS_KEY_PREFIX": prefix or f"orch-{uuid.uuid4().hex[:10]}",
            "RESYNC_BACKOFF_MAX": "1",
            "LOG_LEVEL": "INFO",
            "PYTHONUNBUFFERED": "1",
            **overrides,
        }
    )
    env.pop("CELERY_LOG_LEVEL", None)
    return env


class NodeProcess:
    def __init__(self, name: str, command: list[str], env: dict[str, str], log_dir: Path) -> None:
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        log = self.log_path.open("wb")
        self.process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def count(self, text: str) -> int:
        return self.log().count(text)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def manage_command(*args: str) -> list[str]:
    return [sys.executable, str(ROOT / "manage.py"), *args]
