"""A private redis-server for the test session, which tests may stop and restart to inject faults."""

from __future__ import annotations

import shutil
import socket
import subprocess
import tempfile
import time
from pathlib import Path

import redis


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """One redis-server process on a fixed free port; nothing is persisted to disk."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.workdir = Path(tempfile.mkdtemp(prefix="sorcha-redis-"))
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def broker_url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/1"

    def client(self) -> redis.Redis:
        return redis.Redis(host="127.0.0.1", port=self.port, db=0, socket_timeout=2)

    def start(self) -> None:
        if self.running:
            return
        binary = shutil.which("redis-server")
        if binary is None:
            raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
        log = open(self.workdir / "redis.log", "ab")  # noqa: SIM115 - handed to the child process
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.workdir),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if self.client().ping():
                    return
            except redis.RedisError:
                time.sleep(0.02)
        raise RuntimeError(f"redis-server on port {self.port} did not answer within 10 s")

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None

    def restart_empty(self) -> None:
        """Stop and start again: with no persistence, the new server holds nothing."""
        self.stop()
        self.start()

    def dump(self) -> dict[bytes, tuple[bytes, float | None]]:
        """Every key as DUMP gives it, with its absolute expiry: what an RDB file holds."""
        now = time.time()
        snapshot: dict[bytes, tuple[bytes, float | None]] = {}
        with self.client() as client:
            for key in client.scan_iter(count=1000):
                payload, pttl = client.dump(key), client.pttl(key)
                if payload is not None:
                    snapshot[key] = (payload, now + pttl / 1000 if pttl > 0 else None)
        return snapshot

    def restore(self, snapshot: dict[bytes, tuple[bytes, float | None]]) -> None:
        """Go back to an older dump, as a restart from an old RDB file or a lagging replica would."""
        with self.client() as client:
            pipe = client.pipeline(transaction=True)  # at once, as a failover would
            pipe.flushall()
            now = time.time()
            for key, (payload, expires_at) in snapshot.items():
                if expires_at is None:
                    pipe.restore(key, 0, payload)
                elif expires_at > now:
                    pipe.restore(key, max(1, int((expires_at - now) * 1000)), payload)
            pipe.execute()

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None
