"""Restart: a Peer Service web process started over a Redis holding N advertisements ->
seconds until GET /api/registers/available first returns all N (SC-002: within 5 s).

The bench measures the server: the clock stops when a whole reply holding N rows has arrived.
The rows are counted in the body's bytes (each row is a flat object with one `"registerId":`
member, text no JSON string holds unescaped); the reply is then parsed and checked (N rows, N
distinct register ids) after the clock has stopped: parsing the ~25 MB reply at 100k takes the
client ~0.1 s with orjson (~0.3 s with stdlib json), which is not the server's time.
"""

from __future__ import annotations

import time

import orjson
import requests

from bench.common import advertisement_bodies, bar_chart, print_table, write_results
from peers.store import AdvertisementInput, AdvertisementStore
from tests.nodes import Node
from tests.redis_server import RedisServer

SIZES = [100, 1_000, 10_000, 100_000]


def seed(redis: RedisServer, prefix: str, count: int) -> None:
    store = AdvertisementStore(redis.url, prefix, 300, start_watcher=False)
    bodies = advertisement_bodies(count)
    store.apply_bulk([AdvertisementInput(b["registerId"], True, name=b["name"], source_updated_at=1) for b in bodies])
    store.close()


def measure(redis: RedisServer, count: int) -> float:
    node = Node(f"restart{count}", redis, SORCHA_SERVICE="peer")
    seed(redis, node.prefix, count)
    web = node.add_process(
        "web",
        [
            str(node_bin("gunicorn")),
            "sorcha_site.wsgi:application",
            "--bind",
            f"127.0.0.1:{node.port}",
            "--workers",
            "1",
        ],
    )
    started = time.perf_counter()
    web.start()
    try:
        while time.perf_counter() - started < 60:
            try:
                response = node.session.get(f"{node.url}/api/registers/available", timeout=30)
                if response.status_code == 200 and response.content.count(b'"registerId":') == count:
                    elapsed = time.perf_counter() - started
                    check_rows(response.content, count)
                    return elapsed
            except requests.RequestException:
                pass
            time.sleep(0.01)
        raise RuntimeError(f"the list never reached {count} entries\n{web.tail()}")
    finally:
        node.stop_all()


def check_rows(body: bytes, count: int) -> None:
    """The reply counted as N rows is a JSON list of N rows with N distinct register ids."""
    rows = orjson.loads(body)
    if len(rows) != count or len({row["registerId"] for row in rows}) != count:
        raise RuntimeError(f"the reply counted as {count} rows holds {len(rows)}")


def node_bin(name: str) -> str:
    import sys
    from pathlib import Path

    return str(Path(sys.executable).parent / name)


def main() -> None:
    redis = RedisServer()
    redis.start()
    try:
        rows = [(count, round(measure(redis, count), 3)) for count in SIZES]
    finally:
        redis.stop()
    print_table(
        "Restart: process start -> all N served (s), includes interpreter and Django start", ["N", "seconds"], rows
    )
    write_results("restart", {"rows": [{"n": n, "seconds": s} for n, s in rows], "target_100k_seconds": 2.0})
    bar_chart(
        "restart",
        "Peer Service restart: start -> all N available",
        [str(n) for n, _ in rows],
        {"seconds": [s for _, s in rows]},
        "seconds",
    )


if __name__ == "__main__":
    main()
