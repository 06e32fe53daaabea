"""A real Redis Sentinel group for tests: a primary, a replica and three sentinels, all redis-server processes.

The data servers keep nothing on disk (`--save "" --appendonly no`), so a killed server comes back empty,
as a container without a volume would. Each sentinel runs from a config file of its own (Sentinel rewrites
it) with `down-after-milliseconds 1000` and `failover-timeout 5000`, so a killed primary is replaced
within a few seconds. Every sentinel is watched on its `+switch-master` channel from the start, so a test
knows the moment the group announced a new primary.
"""

from __future__ import annotations

import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import redis

from tests.helpers import wait_until
from tests.tcp_proxy import port_outside_the_ephemeral_range

Address = tuple[str, int]
HOST = "127.0.0.1"


@dataclass(frozen=True)
class Switch:
    """One sentinel's `+switch-master` announcement, stamped when the test heard it (time.time())."""

    announced_at: float
    sentinel_port: int
    old: Address
    new: Address


def _binary() -> str:
    binary = shutil.which("redis-server")
    if binary is None:
        raise RuntimeError("redis-server is not installed (apt-get install -y redis-server)")
    return binary


def _client(port: int) -> redis.Redis:
    return redis.Redis(host=HOST, port=port, socket_timeout=2, socket_connect_timeout=2, decode_responses=True)


class SentinelCluster:
    """A primary, a replica and three sentinels on free ports; `stop()` ends them all and removes their files."""

    def __init__(self, service: str = "sorcha-test", sentinels: int = 3) -> None:
        self.service = service
        self.workdir = Path(tempfile.mkdtemp(prefix="sorcha-sentinel-"))
        # Below the ephemeral range: the clients that keep trying a killed server's port (the sentinels,
        # every process of the node) could otherwise draw it as their own source port and connect to
        # themselves, and the server could not come back on it.
        ports: list[int] = []
        while len(ports) < 2 + sentinels:
            port = port_outside_the_ephemeral_range()
            ports += [] if port in ports else [port]
        self.data_ports, self.sentinel_ports = ports[:2], ports[2:]
        self.data: dict[int, subprocess.Popen[bytes]] = {}
        self.sentinels: dict[int, subprocess.Popen[bytes]] = {}
        self.switches: list[Switch] = []
        self._switches_lock = threading.Lock()
        self._stopping = threading.Event()
        self._listeners: list[threading.Thread] = []
        self._subscribed: dict[int, threading.Event] = {port: threading.Event() for port in self.sentinel_ports}

    # ------------------------------------------------------------ settings a node takes
    @property
    def sentinels_setting(self) -> str:
        """REDIS_SENTINELS: every sentinel's host:port."""
        return ",".join(f"{HOST}:{port}" for port in self.sentinel_ports)

    # ------------------------------------------------------------ lifecycle
    def start(self, timeout: float = 30) -> None:
        try:
            self._start(timeout)
        except BaseException:
            self.stop()  # nothing left running behind a failed start
            raise

    def _start(self, timeout: float) -> None:
        primary, replica = self.data_ports
        self._start_data(primary)
        self._start_data(replica, replica_of=primary)
        wait_until(
            lambda: self._replica_in_sync(replica, primary),
            timeout=timeout,
            message=f"the replica on {replica} never synced with {primary}\n{self.log_tail(replica)}",
        )
        for port in self.sentinel_ports:
            self._start_sentinel(port, primary)
        # Before any fault: every sentinel knows the primary, its replica and the other sentinels
        # (a failover needs the quorum of 2 and a majority to elect a leader).
        wait_until(
            self._group_formed,
            timeout=timeout,
            interval=0.1,
            message=f"the sentinels never formed a group around {primary}\n{self.sentinel_logs()}",
        )
        for port in self.sentinel_ports:
            listener = threading.Thread(target=self._listen, args=(port,), daemon=True)
            listener.start()
            self._listeners.append(listener)
        wait_until(
            lambda: all(event.is_set() for event in self._subscribed.values()),
            timeout=timeout,
            message="the test never subscribed to every sentinel's +switch-master",
        )

    def stop(self) -> None:
        self._stopping.set()
        for process in [*self.sentinels.values(), *self.data.values()]:
            if process.poll() is None:
                process.kill()
            process.wait()
        for listener in self._listeners:
            listener.join(timeout=5)
        self.sentinels.clear()
        self.data.clear()
        shutil.rmtree(self.workdir, ignore_errors=True)

    def _start_data(self, port: int, replica_of: int | None = None) -> None:
        command = [_binary(), "--port", str(port), "--bind", HOST, "--save", "", "--appendonly", "no"]
        # A replica (re)joining starts its full resync at once, not after the default 5 s batching delay.
        command += ["--repl-diskless-sync-delay", "0"]
        command += ["--dir", str(self.workdir), "--logfile", str(self._log(port))]
        if replica_of is not None:
            command += ["--replicaof", HOST, str(replica_of)]
        self.data[port] = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        wait_until(lambda: _client(port).ping(), timeout=10, message=f"redis-server on {port} never answered")

    def _start_sentinel(self, port: int, primary: int) -> None:
        config = self.workdir / f"sentinel-{port}.conf"
        config.write_text(
            "\n".join(
                [
                    f"port {port}",
                    f"bind {HOST}",
                    f"dir {self.workdir}",
                    f"logfile {self._log(port)}",
                    "sentinel resolve-hostnames no",
                    f"sentinel monitor {self.service} {HOST} {primary} 2",
                    f"sentinel down-after-milliseconds {self.service} 1000",
                    f"sentinel failover-timeout {self.service} 5000",
                    f"sentinel parallel-syncs {self.service} 1",
                    "",
                ]
            )
        )
        self.sentinels[port] = subprocess.Popen(
            [_binary(), str(config), "--sentinel"], stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT
        )
        wait_until(lambda: _client(port).ping(), timeout=10, message=f"sentinel on {port} never answered")

    def _log(self, port: int) -> Path:
        return self.workdir / f"redis-{port}.log"

    # ------------------------------------------------------------ what the group says
    def current_primary(self) -> Address:
        """The primary as a sentinel names it (SENTINEL get-master-addr-by-name), asking each until one answers."""
        error: Exception | None = None
        for port in self.sentinel_ports:
            try:
                answer = _client(port).sentinel_get_master_addr_by_name(self.service)
            except redis.RedisError as exc:
                error = exc
                continue
            if answer:
                return str(answer[0]), int(answer[1])
        raise RuntimeError(f"no sentinel names a primary for {self.service}: {error!r}")

    def _masters(self, port: int) -> dict[str, object]:
        state: dict[str, object] = _client(port).sentinel_master(self.service)
        return state

    def _group_formed(self) -> bool:
        for port in self.sentinel_ports:
            state = self._masters(port)
            if state.get("num-slaves") != 1 or state.get("num-other-sentinels") != len(self.sentinel_ports) - 1:
                return False
        return True

    def _replica_in_sync(self, port: int, primary: int) -> bool:
        info = _client(port).info("replication")
        return bool(
            info.get("role") == "slave"
            and int(info.get("master_port", 0)) == primary
            and info.get("master_link_status") == "up"
        )

    def _sentinels_see_replica(self, port: int) -> bool:
        """Every sentinel lists the server as a replica it reaches (flags exactly `slave`: not down, not disconnected).

        Their view of its link to the primary may lag by their 10 s INFO period; once the primary is
        down they ask every replica each second, so a failover judges the link as it is.
        """
        for sentinel in self.sentinel_ports:
            replicas = _client(sentinel).sentinel_slaves(self.service)
            entry = next((row for row in replicas if int(row["port"]) == port), None)
            if entry is None or entry.get("flags") != "slave":
                return False
        return True

    # ------------------------------------------------------------ announcements
    def _listen(self, port: int) -> None:
        while not self._stopping.is_set():
            try:
                pubsub = _client(port).pubsub()
                pubsub.subscribe("+switch-master")
                while not self._stopping.is_set():
                    message = pubsub.get_message(timeout=0.2)
                    if message is None:
                        continue
                    if message["type"] == "subscribe":
                        self._subscribed[port].set()
                        continue
                    heard = time.time()
                    name, old_host, old_port, new_host, new_port = str(message["data"]).split()
                    if name == self.service:
                        switch = Switch(heard, port, (old_host, int(old_port)), (new_host, int(new_port)))
                        with self._switches_lock:
                            self.switches.append(switch)
            except redis.RedisError:
                self._stopping.wait(0.1)  # reconnect to this sentinel, unless the cluster is stopping

    # ------------------------------------------------------------ faults
    def kill_primary(self) -> Address:
        """SIGKILL the current primary (no shutdown, no last replication); its address."""
        address = self.current_primary()
        process = self.data[address[1]]
        process.send_signal(signal.SIGKILL)
        process.wait()
        return address

    def wait_for_promotion(self, old: Address, timeout: float = 30) -> float:
        """When (time.time()) the first sentinel announced a new primary in place of `old`."""

        def announced() -> list[Switch]:
            with self._switches_lock:
                return [switch for switch in self.switches if switch.old == old]

        switches = wait_until(
            announced,
            timeout=timeout,
            message=f"no sentinel announced a primary in place of {old}\n{self.sentinel_logs()}",
        )
        new = switches[0].new
        wait_until(
            lambda: _client(new[1]).info("replication").get("role") == "master",
            timeout=timeout,
            message=f"the promoted {new} does not report role:master",
        )
        return min(switch.announced_at for switch in switches)

    def demote_primary(self, timeout: float = 30) -> tuple[Address, Address]:
        """A failover that leaves the old primary running (SENTINEL FAILOVER): it becomes a replica.

        Returns (old, new) once the old primary reports role:slave with its link to the new one up;
        a client still connected to it then gets READONLY for a write.
        """
        old = self.current_primary()
        _client(self.sentinel_ports[0]).execute_command("SENTINEL", "FAILOVER", self.service)
        self.wait_for_promotion(old, timeout)
        new = self.current_primary()
        wait_until(
            lambda: self._replica_in_sync(old[1], new[1]),
            timeout=timeout,
            interval=0.1,
            message=f"the old primary {old} never became a replica of {new}\n{self.log_tail(old[1])}",
        )
        return old, new

    def restart(self, address: Address, timeout: float = 60) -> None:
        """Start a killed data server again (empty, as a primary); Sentinel turns it into a replica.

        Returns once it replicates the current primary and every sentinel counts it as a healthy replica.
        """
        port = address[1]
        assert self.data[port].poll() is not None, f"{address} is still running"
        self._start_data(port)
        primary = self.current_primary()
        wait_until(
            lambda: self._replica_in_sync(port, primary[1]) and self._sentinels_see_replica(port),
            timeout=timeout,
            interval=0.1,
            message=f"{address} never became a replica of {primary}\n{self.log_tail(port)}\n{self.sentinel_logs()}",
        )

    # ------------------------------------------------------------ failure reports
    def log_tail(self, port: int, lines: int = 30) -> str:
        try:
            text = self._log(port).read_text(errors="replace")
        except FileNotFoundError:
            return f"(no log for {port})"
        return f"--- redis {port}\n" + "\n".join(text.splitlines()[-lines:])

    def sentinel_logs(self, lines: int = 30) -> str:
        return "\n".join(self.log_tail(port, lines) for port in self.sentinel_ports)
