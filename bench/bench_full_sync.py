"""Full sync throughput, end to end: the Register Service's full-sync function reading its
database -> HTTP -> the Peer Service (a gunicorn process) -> Redis, cold (all new: the first
full sync, sent in full) and warm (nothing changed: sent by digest, as every full sync after a
success within one ADVERTISEMENT_TTL), beside the floor: the same N entries written with a
plain redis-py pipeline of SET ... EX. SC-004 asks for 100 registers in 10 s.

Also timed, beside them: a full sync to a Peer Service that lost its store while the Register
Service still counts on its last success (`lost_s`): a digest that comes back needing everything,
then everything in full."""

from __future__ import annotations

import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

from bench.common import bar_chart, print_table, write_results
from tests.constants import SERVICE_TOKEN
from tests.nodes import Node, migrated_database
from tests.redis_server import RedisServer

SIZES = [int(size) for size in os.environ.get("BENCH_SIZES", "100,1000,10000,100000").split(",")]


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


def main() -> None:
    redis = RedisServer()
    redis.start()
    database = migrated_database(Path(tempfile.mkdtemp(prefix="sorcha-bench-register-")))
    configure_register_service(redis, str(database))

    rows = []
    try:
        for count in SIZES:
            fill(count)
            forget_last_success()
            (cold, cold_counts), (warm, warm_counts) = timed_syncs(redis, f"bench{count}", 2)
            assert cold_counts["added"] == count, cold_counts
            assert warm_counts["unchanged"] == count, warm_counts
            base = floor(redis, count)  # measured beside one pool
            # The same set to another Peer Service holding nothing, after that success: by digest first.
            [(lost, lost_counts)] = timed_syncs(redis, f"bench{count}-lost", 1)
            assert lost_counts["added"] == count and lost_counts["unchanged"] == 0, lost_counts
            rows.append((count, cold, warm, base, lost))
            print(
                f"N={count}: cold {cold:.3f} s, warm {warm:.3f} s, lost store {lost:.3f} s, floor {base:.3f} s",
                file=sys.stderr,
            )
    finally:
        redis.stop()

    print_table(
        "Full sync end to end (Register DB -> HTTP -> Peer store in Redis)",
        ["N", "cold s", "cold reg/s", "warm s", "warm reg/s", "floor s", "cold/floor", "lost store s"],
        [
            (n, f"{c:.3f}", f"{n / c:,.0f}", f"{w:.3f}", f"{n / w:,.0f}", f"{b:.3f}", f"{c / b:.2f}", f"{lost:.3f}")
            for n, c, w, b, lost in rows
        ],
    )
    write_results(
        "full_sync",
        {
            "rows": [
                {"n": n, "cold_s": c, "warm_s": w, "floor_s": b, "cold_over_floor": c / b, "lost_store_s": lost}
                for n, c, w, b, lost in rows
            ]
        },
    )
    bar_chart(
        "full_sync",
        "Full sync end to end vs raw pipeline floor",
        [f"{n:,}" for n, *_ in rows],
        {
            "cold": [row[1] for row in rows],
            "warm": [row[2] for row in rows],
            "floor": [row[3] for row in rows],
            "lost store": [row[4] for row in rows],
        },
        "seconds",
    )


if __name__ == "__main__":
    main()
