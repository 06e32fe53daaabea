"""Issue 22: a Redis Sentinel failover loses nothing and stalls nothing.

A node (Peer web and Register web under gunicorn with two workers each, a Celery worker, beat) runs at the
default intervals (ADVERTISEMENT_TTL=300, RECONCILE_INTERVAL=150) on a real Sentinel group
(tests/sentinel_cluster.py). Register traffic runs through the Register API, and the available list is
read, while the primary is SIGKILLed; later the old primary comes back as a replica and the new primary is
killed in turn. After each failover:

- every request was answered with its success status (no 5xx), and every read of the available list was served;
- the pool's local entries equal the Register Service's public registers within 10 s of the traffic's end
  (at the default intervals, only an immediate repair can manage that: the next periodic sync is 150 s away);
- no process logged an error talking to a dead or demoted primary once Sentinel had promoted another;
- every node process is still running;
- the metrics counters keep counting: a full sync asked for through the Register API after the failover
  shows in `sorcha_full_syncs_total` (counted in Redis by the worker, read from Redis by the web).

Two variants: the Celery broker on a Redis of its own that never fails (CELERY_BROKER_URL set), and the broker
on the same Sentinel group (CELERY_BROKER_URL unset). The traffic's randomness has a fresh seed each run,
printed for replay with SORCHA_SENTINEL_SEED.
"""

from __future__ import annotations

import os
import random
import re
import shutil
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from tests.constants import SERVICE_TOKEN
from tests.redis_server import RedisServer
from tests.sentinel_cluster import SentinelCluster
from tests.system.conftest import NODES
from tests.system.harness import SYSTEM_TIMINGS, SystemNode, wait_for

pytestmark = pytest.mark.system

SEED = int(os.environ.get("SORCHA_SENTINEL_SEED") or random.SystemRandom().randrange(2**32))

# The pool must match the Register Service this soon after the traffic ends (the bound).
POOL_DEADLINE_SECONDS = 10.0
# Traffic keeps running this long after the sentinels announced the new primary.
TRAFFIC_PAST_PROMOTION_SECONDS = 5.0
# Log lines stamped later than the promotion by more than this must not show a failing Redis. Sentinel
# publishes +switch-master once the promoted replica answers as a primary; a client learns the new
# address on its next connection, by asking a sentinel. On loopback, everything that fails against the
# dead primary fails at once (a refused connect, a socket reset by the kill: no timeout is involved), so
# an error that began before the announcement is logged within milliseconds of it. One second covers
# that, the test's own pubsub listener hearing the announcement slightly late, and the logs' millisecond
# stamps; an error later than that comes from a client that still talks to the old primary.
GRACE_SECONDS = 1.0

FAILING_REDIS = ("ConnectionError", "ReadOnlyError", "READONLY", "Connection refused", "MasterNotFoundError")
FAILING_REDIS += ("No master found",)  # MasterNotFoundError's own text, as kombu's log lines give it
LOG_STAMP = re.compile(r"^ts=(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) ")

# What the node runs at: its defaults, not the scaled-down timings of the other system tests.
DEFAULTED = (*SYSTEM_TIMINGS, "GOSSIP_TRIGGER_DELAY")
DEFAULT_TIMINGS = {"ADVERTISEMENT_TTL": "300", "RECONCILE_INTERVAL": "150"}

EXPECTED_STATUS = {"create": 201, "flip": 200, "delete": 204}


# ------------------------------------------------------------------ traffic
@dataclass
class Traffic:
    """Register writes (a few a second) and reads of the available list, each from a thread of its own.

    `registers` is the test's model of every register it created: id -> advertise.
    """

    node: SystemNode
    rng: random.Random
    registers: dict[str, bool]
    writes: list[tuple[str, str, int | str]] = field(default_factory=list)
    reads: list[int | str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)

    def start(self) -> None:
        for loop in (self._write_loop, self._read_loop):
            thread = threading.Thread(target=loop, daemon=True)
            thread.start()
            self._threads.append(thread)

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=30)
            assert not thread.is_alive(), "a traffic thread did not finish its request within 30 s"

    @staticmethod
    def _session() -> requests.Session:
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {SERVICE_TOKEN}"
        return session

    def _write_loop(self) -> None:
        session = self._session()
        while not self._stop.is_set():
            started = time.monotonic()
            self._write(session)
            self._stop.wait(max(0.0, 0.2 - (time.monotonic() - started)))  # pacing: about five writes a second

    def _write(self, session: requests.Session) -> None:
        api = f"{self.node.register_url}/api/registers"
        roll = self.rng.random()
        if roll < 0.4 or len(self.registers) < 5:
            public = self.rng.random() < 0.7
            body = {"name": f"failover-{self.rng.randrange(10**9)}", "advertise": public}
            response = self._record(session, "create", "", "POST", f"{api}/", json=body)
            if isinstance(response, requests.Response) and response.status_code == 201:
                self.registers[str(response.json()["id"])] = public
        elif roll < 0.75:
            register_id = self.rng.choice(sorted(self.registers))
            wanted = not self.registers[register_id]
            response = self._record(
                session, "flip", register_id, "PATCH", f"{api}/{register_id}/", json={"advertise": wanted}
            )
            if isinstance(response, requests.Response) and response.status_code == 200:
                self.registers[register_id] = wanted
        else:
            register_id = self.rng.choice(sorted(self.registers))
            response = self._record(session, "delete", register_id, "DELETE", f"{api}/{register_id}/")
            if isinstance(response, requests.Response) and response.status_code == 204:
                del self.registers[register_id]

    def _record(
        self, session: requests.Session, op: str, register_id: str, method: str, url: str, **kwargs: Any
    ) -> requests.Response | None:
        try:
            response = session.request(method, url, timeout=15, **kwargs)
        except requests.RequestException as exc:
            self.writes.append((op, register_id, repr(exc)))
            return None
        self.writes.append((op, register_id, response.status_code))
        return response

    def _read_loop(self) -> None:
        session = self._session()
        while not self._stop.is_set():
            started = time.monotonic()
            try:
                self.reads.append(session.get(f"{self.node.peer_url}/api/registers/available", timeout=15).status_code)
            except requests.RequestException as exc:
                self.reads.append(repr(exc))
            self._stop.wait(max(0.0, 0.1 - (time.monotonic() - started)))


# ------------------------------------------------------------------ what is checked
def public_ids(node: SystemNode) -> set[str]:
    """The Register Service's public registers, through its API (every page)."""
    found: set[str] = set()
    url: str | None = f"{node.register_url}/api/registers/?advertise=true&limit=100"
    while url:
        response = node.session.get(url, timeout=10)
        response.raise_for_status()
        page = response.json()
        found |= {str(row["id"]) for row in page["results"]}
        url = page["next"]
    return found


def local_pool(node: SystemNode) -> set[str]:
    return {row["registerId"] for row in node.available() if row["isLocal"]}


def full_syncs_counted(node: SystemNode) -> float:
    """`sorcha_full_syncs_total` summed over its reasons and outcomes, as the Peer web's /metrics shows it."""
    response = node.session.get(f"{node.peer_url}/metrics", timeout=10)
    response.raise_for_status()
    return sum(
        sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "sorcha_full_syncs_total"
    )


def stamp_of(line: str) -> float | None:
    match = LOG_STAMP.match(line)
    return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp() if match else None


def failing_redis_lines(node: SystemNode, blackouts: list[tuple[float, float]]) -> list[str]:
    """Lines of any process, stamped outside every (kill, promotion + grace) window, that show Redis failing.

    A line without a stamp (a traceback's continuation) carries the stamp of the line it continues.
    """
    found = []
    for name, process in node.processes.items():
        stamp: float | None = None
        for line in list(process.lines):
            stamp = stamp_of(line) or stamp
            if stamp is not None and any(start <= stamp < end for start, end in blackouts):
                continue
            failing = any(text in line for text in FAILING_REDIS)
            if failing or ("level=ERROR" in line and "redis" in line.lower()):
                found.append(f"{name}: {line}")
    return found


def assert_all_served(traffic: Traffic, failover: int) -> None:
    wrong = [write for write in traffic.writes if write[2] != EXPECTED_STATUS[write[0]]]
    assert not wrong, f"failover {failover}: {len(wrong)} of {len(traffic.writes)} writes failed: {wrong[:10]}"
    unserved = [read for read in traffic.reads if read != 200]
    assert traffic.reads and not unserved, (
        f"failover {failover}: {len(unserved)} of {len(traffic.reads)} reads of the available list "
        f"were not served: {unserved[:10]}"
    )


def assert_pool_converges(node: SystemNode, registers: dict[str, bool], ended: float, failover: int) -> None:
    expected = {register_id for register_id, public in registers.items() if public}
    assert public_ids(node) == expected, f"failover {failover}: the Register Service lost a write"
    remaining = ended + POOL_DEADLINE_SECONDS - time.monotonic()
    try:
        wait_for(lambda: local_pool(node) == expected, [], timeout=max(remaining, 0.1), interval=0.2)
    except AssertionError:
        seen = local_pool(node)
        missing, unexpected = sorted(expected - seen), sorted(seen - expected)
        raise AssertionError(
            f"failover {failover}: {POOL_DEADLINE_SECONDS} s after the traffic ended, the pool lacks "
            f"{len(missing)} of the {len(expected)} public registers and holds {len(unexpected)} it should not; "
            "what the logs say of a few:\n" + "\n".join(mentions(node, [*missing[:3], *unexpected[:3]]))
        ) from None


def mentions(node: SystemNode, register_ids: list[str]) -> list[str]:
    """Every log line of any process naming one of the registers, and every full sync's start."""
    return [
        f"{name}: {line}"
        for name, process in node.processes.items()
        for line in list(process.lines)
        if any(register_id in line for register_id in register_ids) or "event=full_sync_started" in line
    ]


def keep_logs(node: SystemNode, cluster: SentinelCluster, test_name: str) -> None:
    """With SORCHA_SENTINEL_LOG_DIR set, every process's whole output (and the sentinels' logs) is kept there."""
    directory = os.environ.get("SORCHA_SENTINEL_LOG_DIR")
    if not directory:
        return
    target = Path(directory) / re.sub(r"[^\w.-]", "_", test_name)
    target.mkdir(parents=True, exist_ok=True)
    for name, process in node.processes.items():
        (target / f"{name}.log").write_text("\n".join(process.log) + "\n")
    (target / "redis.log").write_text(
        "\n".join(cluster.log_tail(port, lines=10_000) for port in [*cluster.data_ports, *cluster.sentinel_ports])
    )


# ------------------------------------------------------------------ fixtures
@pytest.fixture
def cluster() -> Iterator[SentinelCluster]:
    group = SentinelCluster()
    group.start()
    yield group
    group.stop()


@pytest.fixture
def broker() -> Iterator[RedisServer]:
    server = RedisServer()
    server.start()
    yield server
    server.stop()
    shutil.rmtree(server.workdir, ignore_errors=True)


def sentinel_node(cluster: SentinelCluster, broker: RedisServer | None) -> SystemNode:
    """A node on the Sentinel group at the default intervals.

    REDIS_URL names the first primary, as an operator's would: with REDIS_SENTINELS set, only its database
    number and credentials count, so a client built from it would talk to a dead or demoted server.
    """
    first_primary = RedisServer(port=cluster.current_primary()[1])  # never started: only its URL is used
    shutil.rmtree(first_primary.workdir, ignore_errors=True)
    node = SystemNode("sentinel", first_primary, web_workers=2)
    settings = {
        **DEFAULT_TIMINGS,
        "REDIS_URL": first_primary.url,
        "REDIS_SENTINELS": cluster.sentinels_setting,
        "REDIS_SENTINEL_SERVICE": cluster.service,
    }
    for env in (node.env, *(process.env for process in node.processes.values())):
        for key in DEFAULTED:
            env.pop(key, None)
        env.update(settings)
        if broker is None:
            env.pop("CELERY_BROKER_URL")  # the broker follows the Sentinel group too
        else:
            env["CELERY_BROKER_URL"] = broker.broker_url()
    return node


def fail_over(
    cluster: SentinelCluster, node: SystemNode, traffic: Traffic, blackouts: list[tuple[float, float]], failover: int
) -> tuple[str, int]:
    """Kill the primary under traffic, which goes on past the promotion; check everything; the killed address."""
    counted_before = full_syncs_counted(node)
    traffic.start()
    wait_for(lambda: len(traffic.writes) >= 5, [node], timeout=30, message="the traffic never got going")
    killed_at = time.time()
    killed = cluster.kill_primary()
    promoted_at = cluster.wait_for_promotion(killed, timeout=30)
    blackouts.append((killed_at, promoted_at + GRACE_SECONDS))
    print(f"failover {failover}: {killed} killed, a new primary announced {promoted_at - killed_at:.2f} s later")
    wait_for(
        lambda: time.time() >= promoted_at + TRAFFIC_PAST_PROMOTION_SECONDS,
        [node],
        timeout=TRAFFIC_PAST_PROMOTION_SECONDS + 5,
    )
    traffic.stop()
    ended = time.monotonic()
    print(f"failover {failover}: {len(traffic.writes)} writes, {len(traffic.reads)} reads")

    stopped = [name for name, process in node.processes.items() if not process.running]
    assert not stopped, f"failover {failover}: node processes exited: {stopped}"
    assert_all_served(traffic, failover)
    assert_pool_converges(node, traffic.registers, ended, failover)
    # Counted in Redis by the worker, read from Redis by the web: both must have followed the new primary.
    response = node.registers_api("POST", "/api/registers/resync")
    assert response.status_code == 202, f"failover {failover}: the resync was refused: {response.text}"
    wait_for(
        lambda: full_syncs_counted(node) > counted_before,
        [node],
        timeout=60,
        message=f"failover {failover}: sorcha_full_syncs_total stayed at {counted_before}",
    )
    failing = failing_redis_lines(node, blackouts)
    assert not failing, (
        f"failover {failover}: {len(failing)} log lines show Redis failing after the promotion "
        f"(+{GRACE_SECONDS} s):\n" + "\n".join(failing[:40])
    )
    return killed


@pytest.mark.parametrize("broker_place", ["broker-apart", "broker-on-sentinel"])
def test_a_sentinel_failover_loses_nothing_and_stalls_nothing(
    request: pytest.FixtureRequest, cluster: SentinelCluster, broker_place: str
) -> None:
    print(f"\nsentinel failover traffic seed {SEED} (repeat with SORCHA_SENTINEL_SEED={SEED})")
    rng = random.Random(SEED)
    node = sentinel_node(cluster, request.getfixturevalue("broker") if broker_place == "broker-apart" else None)
    request.node.stash[NODES] = [node]
    request.addfinalizer(node.cleanup)
    request.addfinalizer(lambda: keep_logs(node, cluster, request.node.name))
    node.start(timeout=60)
    registers: dict[str, bool] = {}
    for n in range(10):
        public = n % 3 != 0
        registers[node.create_register(f"before-{n}", advertise=public)] = public
    node.wait_available({key for key, public in registers.items() if public}, local=True, timeout=30)

    blackouts: list[tuple[float, float]] = []
    killed = fail_over(cluster, node, Traffic(node, rng, registers), blackouts, failover=1)
    cluster.restart(killed)  # the old primary comes back empty; Sentinel makes it a replica of the new one
    fail_over(cluster, node, Traffic(node, rng, registers), blackouts, failover=2)
