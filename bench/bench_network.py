"""Relayed gossip at scale: N nodes running the real accept-and-merge and anti-entropy code in one
process, over a virtual clock, with no sockets and no database (a benchmark, not a test).

Each node has an Ed25519 key, a `MemoryTable` and `MemoryRates` (`peers.gossip.origins`), and
starts holding only its own signed set (`peers.gossip.records.publish`; sequence and `issuedAt`
from the virtual clock). A round: every node, in a random order, picks as many random neighbours
as `antientropy.round_fanout` says (`GOSSIP_FANOUT` while its map changed since its previous round
began, one otherwise; all of them when it has fewer) and runs one exchange with each through the real steps
of `peers.gossip.antientropy`: Syn -> Ack -> Ack2 (when the Ack carried versions) -> Done ->
finish; every set a node takes goes through `origins.accept` with the neighbour as sender. The
exchanges of a round run one after another, so a set may travel more than one hop in a round. A
round advances the virtual clock by 1 s, and sets live `TTL_MS` (far longer than any run), so no
set expires during a run: the figures are the protocol's spread, not expiry. The rate limits are
set so that they never bind (a sender may hand over a whole table in one window).

Graphs: random 8-regular (paired stub by stub as in Steger and Wormald, drawn again until simple
and connected), a ring and a line; a fresh graph, order and key set per seed. For each
(topology, N), over the seeds:

1. cold start: rounds until every node holds every origin's set, each node starting with its own
   (nothing is pushed: every set travels by anti-entropy);
2. steady state: once converged, one round more (the round after the last news still fans out),
   then one quiet round: its bytes per node;
3. a change: one origin publishes a new set (one more advertisement, a higher sequence), pushed in
   its Syns of the next round: rounds until every node holds it, and bytes per node until then.

Bytes are counted as a message would carry them: each step dict encoded with orjson, plus a fixed
envelope per message (step) measured from a GossipMessage-shaped dict (peerId, publicKey, url,
name, sequence, sentAt; an empty peers list is left out) encoded with orjson, plus the 128-character
signature header value. HTTP heads are not counted. "Per node per round" is every byte of the
round's exchanges divided by N (each node starts its round's exchanges and answers about as many).

The nodes and the exchange are in `bench/network_sim.py`, with the two shortcuts that keep a
thousand nodes fast and change no figure (BENCH_NETWORK_FULL=1 runs without them). Seeds run in
parallel worker processes; a ring or a line costs about N^3 to simulate (N rounds of N nodes whose
tables grow to N), hence BENCH_NETWORK_SLOW_SEEDS.

The chart sets the median rounds beside the push-gossip model of HashiCorp's Serf convergence
simulator: after x rounds N/(1+(N+1)e^(-0.5*fanout*x)) nodes are infected; the model's figure for
N is the x at which that reaches N - 0.5.

Environment: BENCH_SEED (base seed; the clock otherwise), BENCH_NETWORK_SIZES (default
10,100,1000), BENCH_NETWORK_SEEDS (default 20), BENCH_NETWORK_SLOW_SEEDS (seeds for the ring and
the line at N >= 1,000, default 1; the 8-regular graphs always get BENCH_NETWORK_SEEDS),
BENCH_NETWORK_WORKERS (processes, one seed each at a time; default the machine's cores).
"""

from __future__ import annotations

import dataclasses
import math
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from typing import Any

from bench.common import RESULTS, bound, print_bounds, print_table, shown, write_results
from bench.network_sim import (
    BUDGET_BYTES,
    DEGREE,
    ENVELOPE,
    EQUAL_EXCHANGE,
    FANOUT,
    FULL,
    LIMITS,
    ROUND_MS,
    measure_seed,
)

SIZES = [int(size) for size in os.environ.get("BENCH_NETWORK_SIZES", "10,100,1000").split(",")]
SEEDS = int(os.environ.get("BENCH_NETWORK_SEEDS", "20"))
SLOW_SEEDS = int(os.environ.get("BENCH_NETWORK_SLOW_SEEDS", "1"))
WORKERS = int(os.environ.get("BENCH_NETWORK_WORKERS") or os.cpu_count() or 1)
TOPOLOGIES = ("8-regular", "ring", "line")
# The tracker issue's bounds, at N = 1,000 on random 8-regular graphs with fan-out 3.
BOUND_N = 1_000
BOUND_ROUNDS = 12
BOUND_STEADY_BYTES = 1024


# The printed table: (header, key of a row).
COLUMNS = (
    ("topology", "topology"),
    ("N", "n"),
    ("seeds", "seeds"),
    ("rounds med", "rounds_median"),
    ("rounds max", "rounds_max"),
    ("model", "model_rounds"),
    ("cold bytes", "cold_bytes_per_node"),
    ("steady bytes/round", "steady_bytes_per_node_round"),
    ("change rounds med", "change_rounds_median"),
    ("change rounds max", "change_rounds_max"),
    ("change bytes", "change_bytes_per_node"),
    ("s/seed", "seed_seconds_median"),
)


def cell(value: Any) -> str:
    return f"{value:,}" if isinstance(value, int) else str(value)


def model_rounds(n: float, fanout: int = FANOUT) -> float:
    """The rounds at which the push-gossip model N/(1+(N+1)e^(-0.5*fanout*x)) reaches N - 0.5."""
    return math.log((n + 1) * (n - 0.5) / 0.5) / (0.5 * fanout)


def measure_task(task: tuple[str, int, str]) -> tuple[str, int, dict[str, float]]:
    """One seed of one (topology, N), in a worker process; its figures and the seconds it took."""
    started = time.perf_counter()
    topology, n, seed = task
    sample = measure_seed(topology, n, seed)
    return topology, n, {**sample, "seconds": time.perf_counter() - started}


def measure(base_seed: int) -> list[dict[str, Any]]:
    """Every seed of every (topology, N), the slowest first, spread over the machine's cores."""
    tasks = [
        (topology, n, f"{base_seed}-{topology}-{n}-{index}")
        for n in SIZES
        for topology in TOPOLOGIES
        for index in range(seeds_for(topology, n))
    ]
    # The slowest first, so that the workers finish together: an exchange costs about the size of
    # the tables, so a ring or a line costs about N^3 (N rounds of N nodes), a random graph about N^2.
    tasks.sort(key=lambda task: -(300 * task[1] ** 2 if task[0] == "8-regular" else task[1] ** 3))
    samples: dict[tuple[str, int], list[dict[str, float]]] = {}
    with ProcessPoolExecutor(WORKERS, mp_context=multiprocessing.get_context("fork")) as pool:
        for topology, n, sample in pool.map(measure_task, tasks):
            samples.setdefault((topology, n), []).append(sample)
            if len(samples[topology, n]) == seeds_for(topology, n):
                print(f"  {topology} N={n:,}: {seeds_for(topology, n)} seeds done", flush=True)
    return [row(topology, n, samples[topology, n]) for n in SIZES for topology in TOPOLOGIES]


def row(topology: str, n: int, samples: list[dict[str, float]]) -> dict[str, Any]:
    column = {key: [sample[key] for sample in samples] for key in samples[0]}
    return {
        "topology": topology,
        "n": n,
        "seeds": len(samples),
        "rounds_median": statistics.median(column["rounds"]),
        "rounds_max": max(column["rounds"]),
        "model_rounds": round(model_rounds(n), 2),
        "cold_bytes_per_node": round(statistics.median(column["cold_bytes"])),
        "steady_bytes_per_node_round": round(statistics.median(column["steady"])),
        "steady_bytes_per_node_round_max": round(max(column["steady"])),
        "change_rounds_median": statistics.median(column["change_rounds"]),
        "change_rounds_max": max(column["change_rounds"]),
        "change_bytes_per_node": round(statistics.median(column["change_bytes"])),
        "seed_seconds_median": round(statistics.median(column["seconds"]), 2),
    }


def seeds_for(topology: str, n: int) -> int:
    return SEEDS if topology == "8-regular" or n < 1_000 else SLOW_SEEDS


def bounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    row = next((row for row in rows if row["topology"] == "8-regular" and row["n"] == BOUND_N), {})
    where = f"random {DEGREE}-regular, N = {BOUND_N:,}, fan-out {FANOUT}"
    return [
        bound(f"network: median rounds to every node ({where})", row.get("rounds_median"), BOUND_ROUNDS),
        bound(
            f"network: bytes per node, unchanged round ({where})",
            row.get("steady_bytes_per_node_round"),
            BOUND_STEADY_BYTES,
        ),
    ]


def chart(rows: list[dict[str, Any]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib import ticker

    RESULTS.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    for topology in TOPOLOGIES:
        chosen = [row for row in rows if row["topology"] == topology]
        if chosen:
            seeds = ", ".join(str(row["seeds"]) for row in chosen)
            axes.plot(
                [row["n"] for row in chosen],
                [row["rounds_median"] for row in chosen],
                marker="o",
                label=f"{topology}, fan-out {FANOUT}: median rounds (seeds: {seeds})",
            )
    sizes = sorted({row["n"] for row in rows})
    curve = [sizes[0] * (sizes[-1] / sizes[0]) ** (step / 100) for step in range(101)]
    axes.plot(
        curve,
        [model_rounds(n) for n in curve],
        linestyle="--",
        color="grey",
        label=f"push-gossip model (Serf convergence simulator): x where N/(1+(N+1)e^(-0.5*{FANOUT}*x)) = N - 0.5",
    )
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xticks(sizes, [f"{n:,}" for n in sizes])
    axes.yaxis.set_major_locator(ticker.LogLocator(subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(ticker.ScalarFormatter())
    axes.yaxis.set_minor_formatter(ticker.NullFormatter())
    axes.set_xlabel("nodes (N)")
    axes.set_ylabel("rounds until every node holds every set")
    axes.set_title("Relayed gossip: cold-start convergence")
    axes.legend(fontsize=7)
    figure.tight_layout()
    path = RESULTS / "network.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {shown(path)}")


def main() -> None:
    base_seed = int(os.environ.get("BENCH_SEED") or time.time())
    print(f"base seed {base_seed} (BENCH_SEED={base_seed} repeats this run)" + (", every exchange run" if FULL else ""))
    started = time.perf_counter()
    rows = measure(base_seed)
    print_table(
        f"Relayed gossip, fan-out {FANOUT}, budget {BUDGET_BYTES // 1024} KiB per message; bytes are per node",
        [header for header, _ in COLUMNS],
        [[cell(row[key]) for _, key in COLUMNS] for row in rows],
        text_columns=1,
    )
    checked = bounds(rows)
    print_bounds(checked)
    elapsed = time.perf_counter() - started
    print(f"\n{elapsed:.0f} s in all; envelope {ENVELOPE} bytes per message, an equal exchange {EQUAL_EXCHANGE} bytes")
    write_results(
        "network",
        {
            "base_seed": base_seed,
            "fanout": FANOUT,
            "budget_bytes": BUDGET_BYTES,
            "envelope_bytes": ENVELOPE,
            "equal_exchange_bytes": EQUAL_EXCHANGE,
            "every_exchange_run": FULL,
            "round_ms": ROUND_MS,
            "limits": dataclasses.asdict(LIMITS),
            "workers": WORKERS,
            "seconds": round(elapsed, 1),
            "rows": rows,
            "bounds": checked,
        },
    )
    chart(rows)


if __name__ == "__main__":
    main()
