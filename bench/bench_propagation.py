"""Propagation: a public register created on node A (Register API -> worker push -> Peer Service
-> triggered gossip round) -> seconds until node B lists it. Spec: the gossip interval (5 min)."""

from __future__ import annotations

import time

from bench.common import bar_chart, median, print_table, write_results
from tests.nodes import Node
from tests.redis_server import RedisServer

ROUNDS = 10


def main() -> None:
    redis = RedisServer()
    redis.start()
    node_a = Node("prop-a", redis)
    node_b = Node("prop-b", redis, PEER_SEEDS=node_a.url)
    node_a.env["PEER_SEEDS"] = node_b.url
    samples: list[float] = []
    try:
        for node in (node_a, node_b):
            node.start_web(workers=2)
            node.start_worker()
        deadline = time.monotonic() + 60
        while not any(peer["peerId"] for peer in node_b.peers()) and time.monotonic() < deadline:
            time.sleep(0.1)
        for index in range(ROUNDS):
            started = time.perf_counter()
            response = node_a.api("POST", "/api/registers/", json={"name": f"propagated-{index}", "advertise": True})
            response.raise_for_status()
            register_id = response.json()["id"]
            while register_id not in node_b.available_ids():
                if time.perf_counter() - started > 60:
                    raise RuntimeError(f"B never listed the register\n{node_a.logs()}\n{node_b.logs()}")
                time.sleep(0.01)
            samples.append(time.perf_counter() - started)
    finally:
        node_a.stop_all()
        node_b.stop_all()
        redis.stop()
    rows = [(index + 1, round(seconds, 3)) for index, seconds in enumerate(samples)]
    print_table("Propagation A -> B: register created on A until B lists it (s)", ["run", "seconds"], rows)
    print(f"median {median(samples):.3f} s, max {max(samples):.3f} s (spec: 300 s gossip interval, target <= 5 s)")
    write_results("propagation", {"seconds": samples, "median": median(samples), "max": max(samples)})
    bar_chart("propagation", "A -> B propagation", [str(r) for r, _ in rows], {"seconds": samples}, "seconds")


if __name__ == "__main__":
    main()
