"""Burst: 8 clients for 30 s creating, flipping, deleting registers and reading the list (~470 requests/s
in total) against a real node (Register web, Peer web, worker, beat on a private redis-server), then the
seconds from the end of the burst until the Peer Service's local pool equals the public set in the
Register Service's database. Target: <= 2 s (the tracker issue's bound, in the JSON's "bounds"),
with no 5xx.

Reconciliation keeps its production interval (150 s), so what converges the pool is the push on change,
not a periodic full sync that happens to fall due.
"""

from __future__ import annotations

import argparse
import random
import threading
import time
from dataclasses import dataclass, field

import requests

from bench.common import bound, print_bounds, print_table, write_results
from tests.constants import SERVICE_TOKEN
from tests.redis_server import RedisServer
from tests.system.harness import SystemNode, wait_for

CLIENTS = 8
DURATION_S = 30.0
RATE_PER_S = 470.0
CONVERGENCE_TIMEOUT_S = 180.0
CONVERGENCE_BOUND_S = 2.0
# The mix of one client's requests (cumulative weights over create, flip, delete, list).
MIX = (("create", 0.30), ("flip", 0.25), ("delete", 0.15), ("list", 0.30))


@dataclass
class ClientTally:
    requests: int = 0
    errors_5xx: int = 0
    failures: int = 0  # no answer at all (connection refused, timeout)
    by_kind: dict[str, int] = field(default_factory=dict)


class BurstClient(threading.Thread):
    """One client: a paced loop of mixed requests over its own connection, on the registers it created."""

    def __init__(self, index: int, url: str, rate: float, deadline: float) -> None:
        super().__init__(name=f"burst-client-{index}", daemon=True)
        self.url = url
        self.interval = 1.0 / rate
        self.deadline = deadline
        self.random = random.Random(index)  # a reproducible workload per client
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"Bearer {SERVICE_TOKEN}"
        self.owned: dict[str, bool] = {}  # register id -> advertise
        self.tally = ClientTally()
        self.index = index

    def run(self) -> None:
        next_at = time.perf_counter()
        serial = 0
        while True:
            now = time.perf_counter()
            if now >= self.deadline:
                return
            if now < next_at:
                time.sleep(next_at - now)
            next_at += self.interval
            serial += 1
            self.one_request(self.choose(), serial)

    def choose(self) -> str:
        kinds, weights = zip(*MIX, strict=True)
        kind = self.random.choices(kinds, weights)[0]
        if kind in ("flip", "delete") and not self.owned:
            return "create"
        return kind

    def one_request(self, kind: str, serial: int) -> None:
        try:
            response = self.send(kind, serial)
        except requests.RequestException:
            self.tally.failures += 1
            return
        self.tally.requests += 1
        self.tally.by_kind[kind] = self.tally.by_kind.get(kind, 0) + 1
        if response.status_code >= 500:
            self.tally.errors_5xx += 1

    def send(self, kind: str, serial: int) -> requests.Response:
        base = f"{self.url}/api/registers/"
        if kind == "create":
            advertise = self.random.random() < 0.7
            body = {"name": f"burst-{self.index}-{serial}", "advertise": advertise}
            response = self.session.post(base, json=body, timeout=30)
            if response.status_code == 201:
                self.owned[response.json()["id"]] = advertise
            return response
        if kind == "list":
            return self.session.get(base, params={"limit": 50}, timeout=30)
        register_id = self.random.choice(list(self.owned))
        if kind == "flip":
            advertise = not self.owned[register_id]
            response = self.session.patch(f"{base}{register_id}/", json={"advertise": advertise}, timeout=30)
            if response.status_code == 200:
                self.owned[register_id] = advertise
            return response
        response = self.session.delete(f"{base}{register_id}/", timeout=30)
        if response.status_code == 204:
            del self.owned[register_id]
        return response


def run_burst(node: SystemNode, duration: float, rate: float) -> tuple[list[BurstClient], float]:
    started = time.perf_counter()
    clients = [BurstClient(index, node.register_url, rate / CLIENTS, started + duration) for index in range(CLIENTS)]
    for client in clients:
        client.start()
    for client in clients:
        client.join()
    return clients, time.perf_counter() - started


def convergence_seconds(node: SystemNode, timeout: float) -> float:
    """From now (the end of the burst) until the Peer's local pool is exactly the database's public set."""
    started = time.perf_counter()
    public = node.db_public_ids()  # the burst is over: the ground truth no longer moves

    def converged() -> bool:
        return node.available_ids(local=True) == public

    wait_for(converged, [node], timeout=timeout, interval=0.02, message="the pool never equalled the public set")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=DURATION_S, help="seconds of load")
    parser.add_argument("--rate", type=float, default=RATE_PER_S, help="requests per second, all clients together")
    arguments = parser.parse_args()

    redis = RedisServer()
    redis.start()
    node = SystemNode(
        "burst",
        redis,
        web_workers=2,
        ADVERTISEMENT_TTL="300",
        RECONCILE_INTERVAL="150",
        GOSSIP_INTERVAL="150",
        RESYNC_BACKOFF_MAX="30",
    )
    try:
        node.start()
        wait_for(node.succeeded_sync_state, [node], timeout=60, message="the startup full sync")
        clients, elapsed = run_burst(node, arguments.duration, arguments.rate)
        convergence = convergence_seconds(node, CONVERGENCE_TIMEOUT_S)
        public = len(node.db_public_ids())
    finally:
        node.stop_all()
        node.cleanup()
        redis.stop()

    sent = sum(client.tally.requests for client in clients)
    errors_5xx = sum(client.tally.errors_5xx for client in clients)
    failures = sum(client.tally.failures for client in clients)
    rate = sent / elapsed
    kinds = {kind: sum(client.tally.by_kind.get(kind, 0) for client in clients) for kind, _ in MIX}
    print_table(
        f"Burst: {CLIENTS} clients for {arguments.duration:g} s at ~{arguments.rate:g} requests/s, "
        "then until the Peer's local pool equals the public set",
        ["requests sent", "rate sustained (/s)", "5xx", "no answer", "public at the end", "convergence (s)"],
        [(sent, round(rate, 1), errors_5xx, failures, public, round(convergence, 3))],
    )
    print("mix: " + ", ".join(f"{kind} {count}" for kind, count in kinds.items()))
    print(f"target: convergence <= {CONVERGENCE_BOUND_S:g} s after the burst ends, no 5xx (5xx: {errors_5xx})")
    checked = [bound("burst -> pool equals the public set (s)", convergence, CONVERGENCE_BOUND_S)]
    print_bounds(checked)
    write_results(
        "burst",
        {
            "requests": sent,
            "rate_per_s": round(rate, 1),
            "errors_5xx": errors_5xx,
            "convergence_s": convergence,
            "bounds": checked,
        },
    )


if __name__ == "__main__":
    main()
