"""A whole Sorcha node as an operator runs it: four real processes against a private redis-server.

- `peer`     — the Peer Service web (`SORCHA_SERVICE=peer`, gunicorn) on its own port;
- `register` — the Register Service web (`SORCHA_SERVICE=register`, gunicorn) on another port,
               pushing to the Peer Service over HTTP (`PEER_SERVICE_URL` = the peer web's URL);
- `worker`   — `celery -A sorcha_site worker` (`SORCHA_SERVICE=all`, as in docker-compose.yml);
- `beat`     — `celery -A sorcha_site beat`.

Each process can be started, stopped (SIGTERM), killed (SIGKILL), paused (SIGSTOP/SIGCONT)
and restarted on its own; signals go to the process group, so a gunicorn master and its
workers, or a Celery worker and its pool, go together as a container's would. Timings are
scaled down (TTL 4 s, intervals 1 s, backoff cap 1 s) unless a test says otherwise.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import threading
from collections import deque
from datetime import UTC, datetime
from typing import Any

import requests

from tests.helpers import wait_until
from tests.nodes import BIN, ROOT, Node, Process, beat_command, worker_command
from tests.redis_server import RedisServer, free_port

SERVICES = ("peer", "register", "worker", "beat")
WEB_SERVICES = ("peer", "register")

# Scaled-down timings; the node itself refuses a TTL under twice the longest interval.
SYSTEM_TIMINGS = {
    "ADVERTISEMENT_TTL": "4",
    "RECONCILE_INTERVAL": "1",
    "GOSSIP_INTERVAL": "1",
    "RESYNC_BACKOFF_MAX": "1",
    "GOSSIP_BACKOFF_BASE": "0.5",
    "GOSSIP_BACKOFF_MAX": "2",
    "STORE_BREAKER_COOLDOWN": "0.3",
    "PEER_SERVICE_CONNECT_TIMEOUT": "1",
    "PEER_SERVICE_READ_TIMEOUT": "5",
}

# Lines left out of failure reports: with 1 s intervals they would fill every tail.
ROUTINE_LOG_LINES = ("Scheduler: Sending due task", "peers.gossip_round[")

# What each Celery process prints once it is up.
READY_TEXT = {"worker": " ready.", "beat": "beat: Starting..."}


class SystemProcess(Process):
    """A process that can also be paused, and that remembers its output since it last started."""

    def __init__(self, name: str, command: list[str], env: dict[str, str], ready_text: str | None = None) -> None:
        super().__init__(name, command, env)
        self.ready_text = ready_text
        self.ready = threading.Event()
        self.paused = False
        self.runs = 0
        self.log = deque(maxlen=2_000)  # every run's output, for failure reports
        self.lines: deque[str] = deque(maxlen=20_000)  # output of the current run only, for assertions

    def start(self) -> None:
        self.runs += 1
        self.ready.clear()
        self.lines.clear()
        self.paused = False
        self.log.append(f"=== start #{self.runs}")
        self.popen = self._spawn()
        threading.Thread(target=self._drain_run, args=(self.popen, self.runs), daemon=True).start()

    def _drain_run(self, popen: subprocess.Popen[bytes], run: int) -> None:
        assert popen.stdout is not None
        for raw in popen.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.log.append(line)
            if run != self.runs:  # a stopped run's last buffered lines
                continue
            self.lines.append(line)
            if self.ready_text is not None and self.ready_text in line:
                self.ready.set()

    def send(self, sig: int) -> None:
        assert self.popen is not None and self.popen.poll() is None, f"{self.name} is not running"
        os.killpg(self.popen.pid, sig)

    def pause(self) -> None:
        self.send(signal.SIGSTOP)
        self.paused = True
        self.log.append("=== paused (SIGSTOP)")

    def resume(self) -> None:
        self.send(signal.SIGCONT)
        self.paused = False
        self.log.append("=== resumed (SIGCONT)")

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15) -> None:
        if self.popen is not None and self.popen.poll() is None:
            self.log.append(f"=== {signal.Signals(sig).name}")
            if self.paused and sig != signal.SIGKILL:
                os.killpg(self.popen.pid, signal.SIGCONT)  # a stopped process cannot act on SIGTERM
        self.paused = False
        super().stop(sig, timeout)

    def tail(self, lines: int = 60) -> str:
        """The last lines, without the routine ones (beat's ticks, gossip rounds with nobody) that bury the rest."""
        kept = [line for line in list(self.log) if not any(noise in line for noise in ROUTINE_LOG_LINES)]
        return "\n".join(kept[-lines:])

    def count(self, text: str) -> int:
        """Lines of the current run that contain `text`."""
        return sum(text in line for line in list(self.lines))


class SystemNode(Node):
    """One node: the Peer web, the Register web, a worker and beat, each its own process group."""

    processes: dict[str, SystemProcess]  # type: ignore[assignment]

    def __init__(self, name: str, redis: RedisServer, web_workers: int = 1, **settings: Any) -> None:
        super().__init__(name, redis, **{**SYSTEM_TIMINGS, **settings})
        self.redis = redis
        # Node's own port and URL are the Peer Service's (its API helpers talk to the Peer web).
        self.peer_url = self.url
        self.register_port = free_port()
        self.register_url = f"http://127.0.0.1:{self.register_port}"
        self.env["PEER_SERVICE_URL"] = self.env["PEER_PUBLIC_URL"] = self.peer_url
        for service, port in (("peer", self.port), ("register", self.register_port)):
            self.add_process(service, self._gunicorn(port, web_workers), SORCHA_SERVICE=service)
        self.add_process(
            "worker", worker_command(f"{name}-worker-{os.urandom(3).hex()}", concurrency=2), SORCHA_SERVICE="all"
        )
        self.add_process("beat", beat_command(self.directory / "celerybeat-schedule"), SORCHA_SERVICE="all")

    @staticmethod
    def _gunicorn(port: int, workers: int) -> list[str]:
        return [
            str(BIN / "gunicorn"),
            "sorcha_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
            "--graceful-timeout",
            "2",
            # No idle keep-alive connections for a stopping worker to wait out (SIGTERM stays graceful).
            "--keep-alive",
            "0",
            # Not the one control socket under ~/.gunicorn that every gunicorn here would share.
            "--no-control-socket",
        ]

    def add_process(self, name: str, command: list[str], **env: str) -> SystemProcess:
        process = SystemProcess(f"{self.name}/{name}", command, {**self.env, **env}, READY_TEXT.get(name))
        self.processes[name] = process
        return process

    # ------------------------------------------------------------ processes
    def start(self, *names: str, wait: bool = True, timeout: float = 40) -> None:
        """Start the named processes (all four by default) together, then wait until each is up."""
        names = names or SERVICES
        for name in names:
            self.processes[name].start()
        if wait:
            self.wait_ready(*names, timeout=timeout)

    def wait_ready(self, *names: str, timeout: float = 40) -> None:
        names = names or SERVICES
        wait_for(
            lambda: all(self.is_ready(name) for name in names),
            [self],
            timeout=timeout,
            message=f"{self.name}: {', '.join(names)} never came up",
        )

    def is_ready(self, name: str) -> bool:
        process = self.processes[name]
        if not process.running:
            return False
        if name in WEB_SERVICES:
            url = self.peer_url if name == "peer" else self.register_url
            try:
                return requests.get(f"{url}/healthz", timeout=1).status_code == 200
            except requests.RequestException:
                return False
        return process.ready.is_set()

    def stop(self, name: str = "peer", sig: int = signal.SIGTERM) -> None:
        self.processes[name].stop(sig)

    def kill(self, name: str) -> None:
        self.stop(name, signal.SIGKILL)

    def pause(self, name: str) -> None:
        self.processes[name].pause()

    def resume(self, name: str) -> None:
        self.processes[name].resume()

    def restart(self, name: str, sig: int = signal.SIGTERM, wait: bool = True) -> None:
        self.stop(name, sig)
        self.start(name, wait=wait)

    def running(self, name: str) -> bool:
        return self.processes[name].running

    def log_count(self, name: str, text: str) -> int:
        return self.processes[name].count(text)

    def kill_all(self) -> None:
        for process in self.processes.values():
            process.stop(signal.SIGKILL)

    def stop_all(self) -> None:
        for process in self.processes.values():
            process.stop()

    def cleanup(self) -> None:
        self.kill_all()
        self.session.close()
        self.drop_database()
        shutil.rmtree(self.directory, ignore_errors=True)

    # ------------------------------------------------------------ the Register Service's ground truth
    def registers_api(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return self.session.request(method, f"{self.register_url}{path}", timeout=10, **kwargs)

    def create_register(self, name: str, advertise: bool = True, **fields: Any) -> str:
        response = self.registers_api("POST", "/api/registers/", json={"name": name, "advertise": advertise, **fields})
        assert response.status_code == 201, response.text
        return str(response.json()["id"])

    def set_advertise(self, register_id: str, advertise: bool) -> None:
        response = self.registers_api("PATCH", f"/api/registers/{register_id}/", json={"advertise": advertise})
        assert response.status_code == 200, response.text

    def delete_register(self, register_id: str) -> None:
        response = self.registers_api("DELETE", f"/api/registers/{register_id}/")
        assert response.status_code == 204, response.text

    def sync_state(self) -> dict[str, Any]:
        response = self.registers_api("GET", "/api/registers/sync-state")
        response.raise_for_status()
        return dict(response.json())

    def _query(self, sql: str) -> set[str]:
        return {str(value) for value in self.database.query(sql)}

    def db_ids(self) -> set[str]:
        """Every register in the node's database, read by a connection of the test's own."""
        return self._query("SELECT id FROM registers_register")

    def db_public_ids(self) -> set[str]:
        return self._query("SELECT id FROM registers_register WHERE advertise")

    def manage(self, *args: str, timeout: float = 120) -> str:
        """Run `manage.py` with this node's environment (as a Register Service process)."""
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env={**self.env, "SORCHA_SERVICE": "register"},
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
        return result.stdout

    def insert_registers(self, public: int, private: int = 0) -> tuple[set[str], set[str]]:
        """Rows written straight into the database (bulk_create sends no push: only a full sync tells the Peer)."""
        ids = [os.urandom(16).hex() for _ in range(public + private)]
        rows = [{"id": ident, "name": f"bulk-{n}", "advertise": n < public} for n, ident in enumerate(ids)]
        spec = self.directory / f"insert-{os.urandom(4).hex()}.json"
        spec.write_text(json.dumps(rows))
        self.manage(
            "shell",
            "-c",
            "import json\n"
            "from registers.models import Register\n"
            f"rows = json.loads(open({str(spec)!r}).read())\n"
            "Register.objects.bulk_create([Register(**row) for row in rows], batch_size=500)\n",
        )
        spec.unlink()
        return set(ids[:public]), set(ids[public:])

    def succeeded_sync_state(self) -> dict[str, Any] | None:
        """The sync state if the last full sync succeeded (a sync records its outcome after the Peer answered)."""
        state = self.sync_state()
        return state if state["status"] == "success" else None

    def last_success_at(self) -> datetime | None:
        stamp = self.sync_state()["lastSuccessAt"]
        return datetime.fromisoformat(stamp) if stamp else None

    def wait_full_sync_after(self, moment: datetime, timeout: float = 30) -> dict[str, Any]:
        """Wait for a full sync that succeeded after `moment` (the Register Service's clock); its sync state."""

        def synced() -> dict[str, Any] | None:
            state = self.sync_state()
            done = state["lastSuccessAt"] and datetime.fromisoformat(state["lastSuccessAt"]) > moment
            return state if done else None

        return dict(wait_for(synced, [self], timeout=timeout, message=f"{self.name}: no full sync after {moment}"))

    # ------------------------------------------------------------ the Peer Service and its Redis
    def wait_available(
        self,
        expected: set[str],
        timeout: float = 30,
        local: bool | None = None,
        nodes: list[Node] | None = None,
        message: str = "",
    ) -> None:
        """Wait until the Peer Service lists exactly `expected` (local, remote or all registers)."""
        try:
            wait_until(lambda: self.available_ids(local=local) == expected, timeout=timeout)
        except AssertionError:
            try:
                seen = self.available_ids(local=local)
                detail = f"missing {sorted(expected - seen)[:5]} ({len(expected - seen)}), "
                detail += f"unexpected {sorted(seen - expected)[:5]} ({len(seen - expected)})"
            except requests.RequestException as exc:
                detail = f"the Peer Service did not answer: {exc!r}"
            logs = "\n".join(node.logs() for node in nodes or [self])
            raise AssertionError(
                f"{self.name}: {message or 'the available list'} never became exactly the {len(expected)} "
                f"expected registers within {timeout} s: {detail}\n{logs}"
            ) from None

    def store_status(self) -> dict[str, Any]:
        response = self.api("GET", "/api/store/status")
        response.raise_for_status()
        return dict(response.json())

    def redis_local_ids(self) -> set[str]:
        """Register ids of the local advertisements persisted in Redis (what a restarted Peer would load)."""
        client = self.redis.client()
        try:
            marker = f"{self.prefix}:ad:l:"
            return {key.decode()[len(marker) :] for key in client.scan_iter(match=f"{marker}*", count=1000)}
        finally:
            client.close()

    def redis_local_values(self) -> dict[str, bytes]:
        client = self.redis.client()
        try:
            keys = sorted(client.scan_iter(match=f"{self.prefix}:ad:l:*", count=1000))
            return {key.decode(): value for key, value in zip(keys, client.mget(keys) if keys else [], strict=True)}
        finally:
            client.close()


def wait_for(condition: Any, nodes: list[Node], timeout: float = 20, message: str = "", interval: float = 0.05) -> Any:
    """wait_until, with every node's log tail in the failure message (tests.nodes.wait_for, with an interval)."""
    try:
        return wait_until(condition, timeout=timeout, interval=interval, message=message)
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n" + "\n".join(node.logs() for node in nodes)) from None


def now() -> datetime:
    return datetime.now(UTC)


__all__ = ["SERVICES", "SystemNode", "SystemProcess", "now", "wait_for", "wait_until"]
