"""A primary demoted to a replica is never written to again: the next write reaches the new primary.

A real primary, replica and three sentinels. A node process (`manage.py shell`, with REDIS_SENTINELS
set as a deployment would) writes through its coordination and store connections, so each holds a
pooled connection to the primary. Sentinel then fails over *without* killing it (SENTINEL FAILOVER):
the old primary stays up as a replica. Whether the process then finds its pooled connection closed
(Sentinel kills the demoted server's clients) or answered READONLY (a connection made to it before the
sentinels were told), the Sentinel pool takes it as a lost connection and asks the sentinels again.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest
import redis

from tests.sentinel_cluster import SentinelCluster
from tests.settings.helpers import ROOT, environment

# Writes, says so, waits for the test's go, then writes again through the same connections.
CODE = """
from sorcha_site import redis_connections as rc
coordination = rc.connection(rc.COORDINATION)
store = rc.connection(rc.STORE)
coordination.set("sorcha-test:coordination", "before")
store.set("sorcha-test:store", "before")
print("connected", flush=True)
input()
coordination.set("sorcha-test:coordination", "after")
print("coordination written", flush=True)
try:
    store.set("sorcha-test:store", "after")
except Exception as exc:  # the store's alias never retries: its circuit breaker decides
    print("store lost its connection:", type(exc).__name__, flush=True)
    store.set("sorcha-test:store", "after")
print("store written", flush=True)
"""


@pytest.fixture
def cluster() -> Iterator[SentinelCluster]:
    group = SentinelCluster()
    group.start()
    yield group
    group.stop()


def test_after_a_failover_that_leaves_the_old_primary_up_the_next_writes_reach_the_new_primary(
    cluster: SentinelCluster,
) -> None:
    # given: a node process connected to the primary through the sentinels
    node = subprocess.Popen(
        [sys.executable, str(ROOT / "manage.py"), "shell", "--verbosity", "0", "-c", CODE],
        cwd=ROOT,
        env=environment(
            REDIS_URL="redis://127.0.0.1:1/0",  # the host is the service's: never this one
            REDIS_SENTINELS=cluster.sentinels_setting,
            REDIS_SENTINEL_SERVICE=cluster.service,
        ),
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert node.stdout is not None and node.stdin is not None
        assert node.stdout.readline().strip() == "connected", node.stderr.read() if node.stderr else ""

        # when: Sentinel demotes the primary to a replica and promotes the other
        old, new = cluster.demote_primary()
        node.stdin.write("go\n")
        node.stdin.flush()
        out, err = node.communicate(timeout=60)
    finally:
        if node.poll() is None:
            node.kill()

    # then: the coordination write went through at once; the store's at once or after one lost connection
    # (never a READONLY error); both on the new primary, the demoted one a replica of it
    assert node.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "coordination written", err
    assert lines[1:] in (["store written"], ["store lost its connection: ConnectionError", "store written"]), err
    on_new = redis.Redis(host=new[0], port=new[1], decode_responses=True)
    assert on_new.get("sorcha-test:coordination") == "after"
    assert on_new.get("sorcha-test:store") == "after"
    assert redis.Redis(host=old[0], port=old[1]).info("replication")["role"] == "slave"
