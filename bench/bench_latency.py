"""Latency under reconciliation (SC-005): p50/p99 of GET /api/registers/available with 10,000
registers (local, and from 2 remote peers), idle versus while full syncs run back to back."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta

import requests

from bench.common import advertisement_bodies, bar_chart, median, percentile, print_table, write_results
from peers.store import AdvertisementInput, AdvertisementStore
from tests.nodes import Node
from tests.redis_server import RedisServer

LOCAL, PER_PEER, SAMPLES = 6_000, 2_000, 600


def timed_gets(node: Node, count: int) -> list[float]:
    session = requests.Session()
    session.headers.update(node.session.headers)
    samples = []
    for _ in range(count):
        started = time.perf_counter()
        response = session.get(f"{node.url}/api/registers/available", timeout=30)
        samples.append((time.perf_counter() - started) * 1000)
        assert response.status_code == 200
    return samples


def main() -> None:
    redis = RedisServer()
    redis.start()
    node = Node("latency", redis, SORCHA_SERVICE="peer")
    try:
        seeder = AdvertisementStore(redis.url, node.prefix, 300, start_watcher=False)
        for peer in ("peer-one", "peer-two"):
            seeder.replace_remote(
                peer,
                [AdvertisementInput(b["registerId"], True, name=b["name"]) for b in advertisement_bodies(PER_PEER)],
            )
        seeder.close()
        node.start_web(workers=2)
        local = advertisement_bodies(LOCAL)
        node.advertise(local, fullSync=True, snapshotAt=datetime.now(tz=UTC).isoformat())
        assert len(node.available()) == LOCAL + 2 * PER_PEER
        timed_gets(node, 50)  # warm up both workers

        idle = timed_gets(node, SAMPLES)

        stop = threading.Event()
        syncs = []

        def reconcile() -> None:
            moment = datetime.now(tz=UTC)
            while not stop.is_set():
                moment += timedelta(milliseconds=1)
                started = time.perf_counter()
                node.advertise(local, fullSync=True, snapshotAt=moment.isoformat())
                syncs.append(time.perf_counter() - started)

        syncing = threading.Thread(target=reconcile)
        syncing.start()
        try:
            busy = timed_gets(node, SAMPLES)
        finally:
            stop.set()
            syncing.join()
    finally:
        node.stop_all()
        redis.stop()

    rows = [
        ("idle", round(median(idle), 2), round(percentile(idle, 0.99), 2)),
        ("during full syncs", round(median(busy), 2), round(percentile(busy, 0.99), 2)),
    ]
    added = percentile(busy, 0.99) - percentile(idle, 0.99)
    print_table(
        f"GET /api/registers/available, {LOCAL + 2 * PER_PEER} registers ({LOCAL} local, 2 peers x {PER_PEER}), ms",
        ["phase", "p50", "p99"],
        rows,
    )
    print(f"full syncs of {LOCAL} during the run: {len(syncs)}, median {median(syncs):.3f} s")
    print(f"added p99: {added:.2f} ms (spec: <= 100 ms, target: <= 10 ms)")
    write_results(
        "latency",
        {
            "rows": [{"phase": p, "p50_ms": a, "p99_ms": b} for p, a, b in rows],
            "added_p99_ms": round(added, 2),
            "syncs": len(syncs),
        },
    )
    bar_chart(
        "latency",
        "available list latency, idle vs during reconciliation",
        ["p50", "p99"],
        {phase: [p50, p99] for phase, p50, p99 in rows},
        "ms",
    )


if __name__ == "__main__":
    main()
