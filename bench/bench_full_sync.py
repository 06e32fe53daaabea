"""Full sync throughput, end to end: the Register Service's full-sync function reading its
database -> HTTP -> the Peer Service (a gunicorn process) -> Redis, cold (all new: the first
full sync, sent in full) and warm (nothing changed: sent by digest, as every full sync after a
success within one ADVERTISEMENT_TTL), beside the floor: the same N entries written with a
plain redis-py pipeline of SET ... EX. SC-004 asks for 100 registers in 10 s.

Below 100,000 a single run is mostly noise, so there cold, warm and the floor are each the median
of five runs, interleaved (cold 1, warm 1, floor 1, cold 2, ...): each cold run goes to a new Peer
Service that holds nothing, from a Register Service with no last success; its warm run follows it
to the same Peer Service; the floor is written beside that pool, then Redis is emptied. At 100,000
each is one run. The JSON holds, per size, the medians, their ratios to the floor, the number of
runs, each figure's spread (min and max of its runs) and the runs themselves; and the tracker
issue's bounds (100,000 cold and warm, 10,000 cold) with whether this run met them.

Also timed, beside them: a full sync to a Peer Service that lost its store while the Register
Service still counts on its last success (`lost_store_s`, one run): a digest that comes back needing everything,
then everything in full."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

from bench.common import bar_chart, bound, median, print_bounds, print_table, write_results
from tests.constants import SERVICE_TOKEN
from tests.nodes import Node, migrated_database
from tests.redis_server import RedisServer

SIZES = [int(size) for size in os.environ.get("BENCH_SIZES", "100,1000,10000,100000").split(",")]
# Runs per figure below ONE_RUN_FROM entries (their median is reported); one run from there on.
RUNS, ONE_RUN_FROM = 5, 100_000
# The tracker issue's bounds: (entries, figure, bound on its ratio to the floor).
BOUNDS = ((100_000, "cold", 2.0), (100_000, "warm", 0.7), (10_000, "cold", 2.0))
HEADERS = ("N", "runs", "cold s", "min-max", "cold reg/s", "warm s", "floor s", "cold/floor", "warm/floor", "lost s")
CHART = (("cold", "cold_s"), ("warm", "warm_s"), ("floor", "floor_s"), ("lost store", "lost_store_s"))


def configure_register_service(redis: RedisServer, database: str) -> None:
    """This process plays the Register Service: Django set up on its own database."""
    os.environ.update(
        {
            "DJANGO_SETTINGS_MODULE": "sorcha_site.settings",
            "DEBUG": "false",
            "SECRET_KEY": "bench-secret-key",
            "SORCHA_SERVICE": "register",
            "SORCHA_SERVICE_TOKEN": SERVICE_TOKEN,
            "DATABASE_URL": f"sqlite:///{database}",
            "REDIS_URL": redis.url,
            "CELERY_BROKER_URL": redis.broker_url(),
            "REDIS_KEY_PREFIX": "bench-register",
            "LOG_LEVEL": "WARNING",
            "PEER_SERVICE_READ_TIMEOUT": "300",
        }
    )
    import django

    django.setup()


def fill(count: int) -> None:
    from registers.models import Register

    Register.objects.all().delete()
    Register.objects.bulk_create(
        (
            Register(
                id=uuid.uuid4().hex,
                name=f"register-{n}",
                description="a public register used by the benchmark",
                advertise=True,
                latest_version=n,
                latest_docket_version=n,
            )
            for n in range(count)
        ),
        batch_size=5_000,
    )


def floor(redis: RedisServer, count: int) -> float:
    client = redis.client()
    value = b"x" * 160  # about the size of one stored advertisement
    started = time.perf_counter()
    pipe = client.pipeline(transaction=False)
    for n in range(count):
        pipe.set(f"floor:{n}", value, ex=300)
    pipe.execute()
    elapsed = time.perf_counter() - started
    client.flushdb()
    return elapsed


def forget_last_success() -> None:
    """The Register Service as before its first full sync: no success to count on (sent in full)."""
    from registers.models import AdvertisementSyncState

    AdvertisementSyncState.objects.all().delete()


def timed_full_sync() -> tuple[float, dict[str, int]]:
    from registers.advertising import full_sync

    started = time.perf_counter()
    result = full_sync("manual")
    return time.perf_counter() - started, result.counts


def timed_syncs(redis: RedisServer, name: str, count: int) -> list[tuple[float, dict[str, int]]]:
    """A new Peer Service (one gunicorn process) and `count` timed full syncs to it, one after another."""
    from django.conf import settings

    peer = Node(name, redis, SORCHA_SERVICE="peer")
    peer.start_web(workers=1)
    settings.PEER_SERVICE_URL = peer.url
    try:
        return [timed_full_sync() for _ in range(count)]
    finally:
        peer.stop_all()


def one_round(redis: RedisServer, count: int, index: int) -> tuple[float, float, float]:
    """Cold (a new Peer Service holding nothing, no last success), then warm to the same Peer
    Service, then the floor beside its pool; the floor empties Redis after itself."""
    forget_last_success()
    (cold, cold_counts), (warm, warm_counts) = timed_syncs(redis, f"bench{count}-{index}", 2)
    assert cold_counts["added"] == count, cold_counts
    assert warm_counts["unchanged"] == count, warm_counts
    return cold, warm, floor(redis, count)


def measure(redis: RedisServer, count: int) -> dict[str, Any]:
    fill(count)
    runs = 1 if count >= ONE_RUN_FROM else RUNS
    rounds = [one_round(redis, count, index) for index in range(runs)]
    samples = dict(zip(("cold", "warm", "floor"), (list(column) for column in zip(*rounds, strict=True)), strict=True))
    cold, warm, base = (median(column) for column in samples.values())
    # The same set to another Peer Service holding nothing, after that success: by digest first.
    [(lost, lost_counts)] = timed_syncs(redis, f"bench{count}-lost", 1)
    assert lost_counts["added"] == count and lost_counts["unchanged"] == 0, lost_counts
    print(
        f"N={count} ({runs} run(s)): cold {cold:.3f} s, warm {warm:.3f} s, floor {base:.3f} s, lost store {lost:.3f} s",
        file=sys.stderr,
    )
    return {
        "n": count,
        "runs": runs,
        "cold_s": cold,
        "warm_s": warm,
        "floor_s": base,
        "cold_over_floor": cold / base,
        "warm_over_floor": warm / base,
        "lost_store_s": lost,
        **{f"{name}_spread_s": [min(column), max(column)] for name, column in samples.items()},
        **{f"{name}_runs_s": column for name, column in samples.items()},
    }


def bounds(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_size = {row["n"]: row for row in rows}
    return [
        bound(
            f"{count:,} full sync, {kind} / floor",
            by_size[count][f"{kind}_over_floor"] if count in by_size else None,
            limit,
        )
        for count, kind, limit in BOUNDS
    ]


def main() -> None:
    redis = RedisServer()
    redis.start()
    database = migrated_database(Path(tempfile.mkdtemp(prefix="sorcha-bench-register-")))
    configure_register_service(redis, str(database))
    try:
        rows = [measure(redis, count) for count in SIZES]
    finally:
        redis.stop()

    print_table(
        f"Full sync end to end (Register DB -> HTTP -> Peer store in Redis); medians of {RUNS} interleaved runs "
        f"below {ONE_RUN_FROM:,}",
        HEADERS,
        [
            (
                f"{row['n']:,}",
                row["runs"],
                f"{row['cold_s']:.3f}",
                "{:.3f}-{:.3f}".format(*row["cold_spread_s"]),
                f"{row['n'] / row['cold_s']:,.0f}",
                f"{row['warm_s']:.3f}",
                f"{row['floor_s']:.3f}",
                f"{row['cold_over_floor']:.2f}",
                f"{row['warm_over_floor']:.2f}",
                f"{row['lost_store_s']:.3f}",
            )
            for row in rows
        ],
    )
    checked = bounds(rows)
    print_bounds(checked)
    write_results("full_sync", {"rows": rows, "bounds": checked})
    bar_chart(
        "full_sync",
        "Full sync end to end vs raw pipeline floor",
        [f"{row['n']:,}" for row in rows],
        {name: [row[key] for row in rows] for name, key in CHART},
        "seconds",
    )


if __name__ == "__main__":
    main()
