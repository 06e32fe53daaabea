"""Restart: a Peer Service web process started over a Redis holding N advertisements ->
seconds until GET /api/registers/available first returns all N (SC-002: within 5 s).

The bench measures the server: the clock stops when a whole reply holding N rows has arrived.
The rows are counted in the body's bytes (each row is a flat object with one `"registerId":`
member, text no JSON string holds unescaped); the reply is then parsed and checked (N rows, N
distinct register ids) after the clock has stopped: parsing the ~25 MB reply at 100k takes the
client ~0.1 s with orjson (~0.3 s with stdlib json), which is not the server's time.

Beside each restart, the floor of reading the same pool, in this process against the same Redis
holding the same N keys (timed after `seed()`, before the web process starts): SCAN (MATCH on the
node's prefix, COUNT 10,000), one MGET per page of the keys it found, and orjson.loads of each
value's JSON (the part after the "|" of `<stamp>|<json>`). The tracker issue's bound: the restart
at 100,000 minus the restart at 100 (the delta: what the entries cost, without the interpreter's
and Django's start) is at most 2.0 x the floor at 100,000 (not minus the floor at 100: the bound
names the floor of reading the 100,000 keys). The floor's own delta is written beside it.

A restart at 100 is mostly the interpreter's and Django's start, and one such run varies by more
than the whole floor; so below 100,000 the restart and its floor are each the median of five runs,
interleaved (floor 1, restart 1, floor 2, ...), as the full-sync bench takes its figures. At
100,000 they are the median of three: the floor alone moves between 0.2 and 0.41 s from one run
to the next on 2 shared cores. Each run
starts from an emptied Redis holding only its own pool: a restart's SCAN walks every key of the
database, so pools left by earlier runs would slow the later ones.

BENCH_RESTART_SIZES (comma-separated) replaces the sizes for a trial run; the delta is then taken
between its smallest and largest size, and the bound is "not measured" unless those are 100 and
100,000.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson
import requests
from redis import Redis

from bench.common import (
    advertisement_bodies,
    bar_chart,
    bound,
    median,
    print_bounds,
    print_table,
    write_results,
)
from peers.store import AdvertisementInput, AdvertisementStore
from tests.nodes import Node
from tests.redis_server import RedisServer

SIZES = [int(size) for size in os.environ.get("BENCH_RESTART_SIZES", "100,1000,10000,100000").split(",")]
# The tracker issue's bound: restart at TO minus restart at FROM, over the floor at TO.
BOUND_FROM, BOUND_TO, BOUND = 100, 100_000, 2.0
SCAN_COUNT = 10_000
# Runs per size (their medians are reported): RUNS below LARGE entries, LARGE_RUNS from there on.
RUNS, LARGE, LARGE_RUNS = 5, 100_000, 3


def seed(redis: RedisServer, prefix: str, count: int) -> None:
    store = AdvertisementStore(redis.url, prefix, 300, start_watcher=False)
    bodies = advertisement_bodies(count)
    store.apply_bulk([AdvertisementInput(b["registerId"], True, name=b["name"], source_updated_at=1) for b in bodies])
    store.close()


def read_floor(server: RedisServer, prefix: str, count: int) -> float:
    """Seconds to read the pool under `prefix` with plain redis-py: SCAN pages, an MGET per page,
    orjson.loads of each value's JSON. Keys that hold no string (the change log) read as None."""
    client = Redis(host="127.0.0.1", port=server.port, db=0, socket_timeout=60)
    client.ping()  # connected before the clock starts: the floor is the reading
    started = time.perf_counter()
    parsed, cursor = [], 0
    while True:
        cursor, keys = client.scan(cursor, match=f"{prefix}:*", count=SCAN_COUNT)
        if keys:
            parsed.extend(orjson.loads(value.partition(b"|")[2]) for value in client.mget(keys) if value is not None)
        if cursor == 0:
            break
    elapsed = time.perf_counter() - started
    client.close()
    if len(parsed) != count:
        raise RuntimeError(f"the floor read {len(parsed)} values of {count}")
    return elapsed


def measure(redis: RedisServer, count: int) -> dict[str, Any]:
    """The restart and the floor at one size: medians of RUNS runs (LARGE_RUNS from LARGE on), interleaved."""
    runs = [restart_and_floor(redis, count) for _ in range(LARGE_RUNS if count >= LARGE else RUNS)]
    restarts, floors = ([run[i] for run in runs] for i in (0, 1))
    return {
        "n": count,
        "runs": len(runs),
        "seconds": median(restarts),
        "floor_s": median(floors),
        "spread_s": [min(restarts), max(restarts)],
        "floor_spread_s": [min(floors), max(floors)],
    }


def restart_and_floor(redis: RedisServer, count: int) -> tuple[float, float]:
    """(restart seconds, floor seconds) over one pool of `count` advertisements, the only one in
    Redis (a restart's SCAN walks every key of the database, other nodes' too)."""
    redis.client().flushdb()
    node = Node(f"restart{count}", redis, SORCHA_SERVICE="peer")
    seed(redis, node.prefix, count)
    floor = read_floor(redis, node.prefix, count)
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
                    return elapsed, floor
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


def delta(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The restart's delta between the smallest and the largest size, over the floor at the largest."""
    low, high = min(rows, key=lambda row: row["n"]), max(rows, key=lambda row: row["n"])
    restart_delta = high["seconds"] - low["seconds"]
    return {
        "from_n": low["n"],
        "to_n": high["n"],
        "restart_delta_s": round(restart_delta, 4),
        "floor_s": round(high["floor_s"], 4),
        "floor_delta_s": round(high["floor_s"] - low["floor_s"], 4),
        "delta_over_floor": round(restart_delta / high["floor_s"], 4),
    }


def main() -> None:
    redis = RedisServer()
    redis.start()
    try:
        rows = [measure(redis, count) for count in SIZES]
    finally:
        redis.stop()
    print_table(
        "Restart: process start -> all N served (s), includes interpreter and Django start; floor: SCAN + MGET + "
        f"orjson.loads of the same keys in the bench process (s); medians of {RUNS} runs below {LARGE:,}, "
        f"of {LARGE_RUNS} from there on",
        ["N", "runs", "restart s", "min-max", "floor s"],
        [
            (
                f"{row['n']:,}",
                row["runs"],
                f"{row['seconds']:.3f}",
                "{:.3f}-{:.3f}".format(*row["spread_s"]),
                f"{row['floor_s']:.4f}",
            )
            for row in rows
        ],
    )
    measured = delta(rows)
    print(
        f"restart {measured['to_n']:,} - restart {measured['from_n']:,} = {measured['restart_delta_s']:.3f} s, "
        f"{measured['delta_over_floor']:.2f} x the floor at {measured['to_n']:,} ({measured['floor_s']:.3f} s)"
    )
    checked = [
        bound(
            f"restart {BOUND_TO:,} - restart {BOUND_FROM:,} / floor",
            measured["delta_over_floor"] if (measured["from_n"], measured["to_n"]) == (BOUND_FROM, BOUND_TO) else None,
            BOUND,
        )
    ]
    print_bounds(checked)
    write_results("restart", {"rows": rows, "delta": measured, "bounds": checked})
    bar_chart(
        "restart",
        "Peer Service restart: start -> all N available, beside the floor of reading the pool",
        [f"{row['n']:,}" for row in rows],
        {"restart": [row["seconds"] for row in rows], "floor": [row["floor_s"] for row in rows]},
        "seconds",
    )


if __name__ == "__main__":
    main()
