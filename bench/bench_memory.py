"""Memory: the resident size of one Peer Service web process mirroring N local advertisements,
beside what Redis needs for the same data.

Every web process mirrors the whole pool, so its per-entry cost multiplies by the number of
processes. For each N a private Redis is emptied, its `used_memory` read (the baseline), N local
advertisements seeded and `used_memory` read again; then one gunicorn worker is started over
it, the available list is read once (so its rendering exists, as in production) and the
worker's VmRSS (and VmHWM, its peak) is read from /proc. Then one register is advertised (the
list, being read, is rendered again with N + 1 rows), the list read again, and VmRSS read again
("after write": what a serving process keeps once it renders at run time). An idle worker over
an empty pool gives the process's own baseline.

Target (the tracker issue): the RSS of one web process holding 100k advertisements, above an idle
one, is at most 2.5 x Redis's `used_memory` for the same data ("ratio_minus_idle" below; "ratio"
is RSS / used_memory, both whole). The JSON's "bounds" holds "ratio_minus_idle" at 100,000.
The client parses replies with orjson: the bench measures the server, not stdlib json.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import orjson
import requests

from bench.bench_restart import node_bin, seed
from bench.common import bar_chart, bound, print_bounds, print_table, write_results
from tests.nodes import Node, Process
from tests.redis_server import RedisServer

SIZES = [10_000, 100_000]
TARGET_RATIO = 2.5
BOUND_AT = 100_000
MIB = 1024 * 1024


def used_memory(redis: RedisServer) -> int:
    return int(redis.client().info("memory")["used_memory"])


def worker_pid(master: Process) -> int:
    """The one gunicorn worker forked by the master (the process that holds the mirror)."""
    assert master.popen is not None
    pid = master.popen.pid
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        if children:
            return int(children[0])
        time.sleep(0.01)
    raise RuntimeError(f"gunicorn forked no worker\n{master.tail()}")


def status_kib(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} in /proc/{pid}/status")


def serve(node: Node, count: int) -> dict[str, Any]:
    """Start one worker over the `count` advertisements already under the node's prefix, read the
    list once, and report its memory and how long that first read took."""
    web = node.add_process(
        "web",
        [node_bin("gunicorn"), "sorcha_site.wsgi:application", "--bind", f"127.0.0.1:{node.port}", "--workers", "1"],
    )
    started = time.perf_counter()
    web.start()
    try:
        while not node.healthy():
            if time.perf_counter() - started > 60:
                raise RuntimeError(f"the node never became healthy\n{web.tail()}")
            time.sleep(0.01)
        healthy_after = time.perf_counter() - started
        before = time.perf_counter()
        response = node.session.get(f"{node.url}/api/registers/available", timeout=60)
        first_read = time.perf_counter() - before
        response.raise_for_status()
        served = len(orjson.loads(response.content))
        if served != count:
            raise RuntimeError(f"served {served} of {count}\n{web.tail()}")
        before = time.perf_counter()
        node.session.get(f"{node.url}/api/registers/available", timeout=60).raise_for_status()
        second_read = time.perf_counter() - before
        pid = worker_pid(web)
        rss = status_kib(pid, "VmRSS") * 1024
        # One register advertised, as the Register Service pushes a change: the list was read, so the
        # write renders it again (all N + 1 rows).
        node.advertise([{"registerId": uuid.uuid4().hex, "isPublic": True, "name": "one more"}])
        again = node.available()
        if len(again) != count + 1:
            raise RuntimeError(f"served {len(again)} of {count + 1} after a write\n{web.tail()}")
        return {
            "rss": rss,
            "rss_after_write": status_kib(pid, "VmRSS") * 1024,
            "peak": status_kib(pid, "VmHWM") * 1024,
            "healthy_after": healthy_after,
            "first_read": first_read,
            "second_read": second_read,
            "body_bytes": len(response.content),
        }
    except requests.RequestException as exc:
        raise RuntimeError(f"{exc}\n{web.tail()}") from exc
    finally:
        node.stop_all()


def measure(redis: RedisServer, count: int, idle_rss: int) -> dict[str, Any]:
    redis.client().flushall()
    empty = used_memory(redis)
    node = Node(f"memory{count}", redis, SORCHA_SERVICE="peer")
    seed(redis, node.prefix, count)
    data = used_memory(redis) - empty
    served = serve(node, count)
    rss = served["rss"]
    return {
        "n": count,
        "rss_mib": round(rss / MIB, 1),
        "rss_minus_idle_mib": round((rss - idle_rss) / MIB, 1),
        "peak_mib": round(served["peak"] / MIB, 1),
        "redis_used_memory_mib": round(data / MIB, 1),
        "ratio": round(rss / data, 2),
        "ratio_minus_idle": round((rss - idle_rss) / data, 3),
        "bytes_per_entry": round((rss - idle_rss) / count),
        "rss_after_write_minus_idle_mib": round((served["rss_after_write"] - idle_rss) / MIB, 1),
        "ratio_after_write_minus_idle": round((served["rss_after_write"] - idle_rss) / data, 2),
        "first_read_seconds": round(served["first_read"], 3),
        "second_read_seconds": round(served["second_read"], 4),
        "body_mib": round(served["body_bytes"] / MIB, 1),
    }


def main() -> None:
    redis = RedisServer()
    redis.start()
    try:
        redis.client().flushall()
        idle = serve(Node("memory0", redis, SORCHA_SERVICE="peer"), 0)
        rows = [measure(redis, count, idle["rss"]) for count in SIZES]
    finally:
        redis.stop()
    headers = list(rows[0])
    print_table(
        f"Memory of one web process (1 gunicorn worker) vs Redis used_memory; idle worker RSS "
        f"{idle['rss'] / MIB:.1f} MiB; target ratio (RSS / used_memory) <= {TARGET_RATIO}",
        headers,
        [[row[key] for key in headers] for row in rows],
    )
    at_bound = next((row["ratio_minus_idle"] for row in rows if row["n"] == BOUND_AT), None)
    checked = [bound(f"RSS above idle / Redis used_memory, {BOUND_AT:,} local", at_bound, TARGET_RATIO)]
    print_bounds(checked)
    write_results(
        "memory",
        {"idle_rss_mib": round(idle["rss"] / MIB, 1), "rows": rows, "target_ratio": TARGET_RATIO, "bounds": checked},
    )
    bar_chart(
        "memory",
        "One web process's RSS vs Redis used_memory",
        [str(row["n"]) for row in rows],
        {
            "web process RSS (MiB)": [row["rss_mib"] for row in rows],
            "Redis used_memory (MiB)": [row["redis_used_memory_mib"] for row in rows],
        },
        "MiB",
    )


if __name__ == "__main__":
    main()
