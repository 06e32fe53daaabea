"""After a write has answered, every web process serves the same list, `lastSeen` and `verified` included (§5).

One node: its Peer Service as docker-compose runs it (`gunicorn sorcha_site.wsgi:application --workers 2`,
`SORCHA_SERVICE=peer`) on a private redis-server and a database of its own. Each test makes one kind of
write over HTTP and, once it has answered, reads `GET /api/registers/available` at least 12 times, each
on a fresh connection. gunicorn's access log names the worker (pid) that answered each read, and the
reads go on until both workers have answered. Every read must return the very same JSON, and it must
show the write.
"""

from __future__ import annotations

import itertools
import json
import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import requests

from tests.constants import SERVICE_TOKEN
from tests.nodes import BIN
from tests.peers.fake_peers import FakeNode, remote_ad
from tests.system.conftest import MakeNode
from tests.system.harness import SystemNode, wait_for

pytestmark = pytest.mark.system

READS = 12  # reads after each write, at the least
MAX_READS = 480  # reads go on (in dozens) until both workers have answered, up to this many
WORKERS = 2
# Long enough that nothing expires during a test: no Register Service refreshes these advertisements.
TIMINGS = {"ADVERTISEMENT_TTL": "120", "RECONCILE_INTERVAL": "30", "GOSSIP_INTERVAL": "30"}
READ_HEADER = "X-Agreement-Read"
ACCESS_LOG_FORMAT = "agreement-read=%({x-agreement-read}i)s worker=%(p)s status=%(s)s"
ACCESS_LINE = re.compile(r"agreement-read=(?P<tag>r\d+) worker=<(?P<pid>\d+)>")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
TAG_NUMBERS = itertools.count()  # one sequence for every Reader: a tag names one request in the access log


def peer_web_command(port: int) -> list[str]:
    """The Peer web as docker-compose and the Procfile run it, with an access log that names the worker."""
    return [
        str(BIN / "gunicorn"),
        "sorcha_site.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        str(WORKERS),
        "--graceful-timeout",
        "2",
        "--no-control-socket",  # not the one control socket under ~/.gunicorn every gunicorn here would share
        "--access-logfile",
        "-",
        "--access-logformat",
        ACCESS_LOG_FORMAT,
    ]


class Reader:
    """Reads on fresh connections, each tagged, so the access log tells which worker answered it."""

    def __init__(self, node: SystemNode) -> None:
        self.node = node
        self.tags = (f"r{n}" for n in TAG_NUMBERS)

    def get(self, path: str) -> tuple[str, requests.Response]:
        tag = next(self.tags)
        headers = {"Authorization": f"Bearer {SERVICE_TOKEN}", "Connection": "close", READ_HEADER: tag}
        with requests.Session() as session:
            return tag, session.get(f"{self.node.url}{path}", headers=headers, timeout=15)

    def workers(self, tags: list[str]) -> dict[str, str]:
        """The pid of the worker that answered each tagged request (its access log line may lag the answer)."""
        wanted = set(tags)

        def logged() -> dict[str, str] | None:
            served = {}
            for line in list(self.node.processes["peer"].lines):
                match = ACCESS_LINE.search(line)
                if match and match["tag"] in wanted:
                    served[match["tag"]] = match["pid"]
            return served if len(served) == len(wanted) else None

        return dict(wait_for(logged, [self.node], timeout=15, message=f"access log lines of {sorted(wanted)}"))

    def answers(self, path: str, count: int) -> list[tuple[str, str, Any]]:
        """`count` reads of `path`: (tag, worker pid, JSON body) each."""
        reads = [self.get(path) for _ in range(count)]
        served = self.workers([tag for tag, _ in reads])
        for tag, response in reads:
            assert response.status_code == 200, f"read {tag} by worker {served[tag]}: {response.status_code}"
        return [(tag, served[tag], response.json()) for tag, response in reads]


def agreed_list(reader: Reader) -> list[dict[str, Any]]:
    """The available list, read a dozen times or more until both workers answered; every read must be the same."""
    reads: list[tuple[str, str, Any]] = []
    while len(reads) < READS or (len({pid for _, pid, _ in reads}) < WORKERS and len(reads) < MAX_READS):
        reads += reader.answers("/api/registers/available", READS)
    variants: dict[str, list[tuple[str, str]]] = {}
    for tag, pid, body in reads:
        variants.setdefault(json.dumps(body, sort_keys=True), []).append((tag, pid))
    assert len(variants) == 1, disagreement(variants)
    pids = {pid for _, pid, _ in reads}
    assert len(pids) == WORKERS, f"only worker(s) {sorted(pids)} answered {len(reads)} reads on fresh connections"
    return list(reads[0][2])


def disagreement(variants: dict[str, list[tuple[str, str]]]) -> str:
    """Which worker served which body, and the fields where the bodies differ."""
    lines = [f"the reads returned {len(variants)} different lists:"]
    bodies = [json.loads(text) for text in variants]
    for text, served in variants.items():
        by_worker: dict[str, list[str]] = {}
        for tag, pid in served:
            by_worker.setdefault(pid, []).append(tag)
        lines.append(f"--- served by {', '.join(f'worker {pid} (reads {tags})' for pid, tags in by_worker.items())}")
        lines.append(json.dumps(json.loads(text), indent=1))
    first = {row["registerId"]: row for row in bodies[0]}
    for other in bodies[1:]:
        for row in other:
            held = first.get(row["registerId"], {})
            keys = set(held) | set(row)
            fields = {key: (held.get(key), row.get(key)) for key in keys if held.get(key) != row.get(key)}
            if fields:
                lines.append(f"differs for {row['registerId']}: {fields}")
        missing = set(first) - {row["registerId"] for row in other}
        if missing:
            lines.append(f"missing from a variant: {sorted(missing)}")
    return "\n".join(lines)


def both_workers_report(reader: Reader, path: str, holds: Callable[[Any], bool]) -> Callable[[], bool]:
    """A condition to poll: a dozen reads of `path` all hold, and each worker has answered such a read since
    the polling began (one answer that does not hold starts it again). The kernel hands new connections to
    the two workers unevenly, so one dozen may well come from one worker alone."""
    held_by: set[str] = set()

    def condition() -> bool:
        reads = reader.answers(path, READS)
        if not all(holds(body) for _, _, body in reads):
            held_by.clear()
            return False
        held_by.update(pid for _, pid, _ in reads)
        return len(held_by) == WORKERS

    return condition


@pytest.fixture
def node(make_node: MakeNode) -> SystemNode:
    node = make_node("agreement", **TIMINGS)
    node.add_process("peer", peer_web_command(node.port), SORCHA_SERVICE="peer")
    node.start("peer", timeout=60)
    # Both workers up and answering before the test writes (a worker's first request imports the views).
    wait_for(
        both_workers_report(Reader(node), "/readyz", lambda body: body["store"] == "ok"),
        [node],
        timeout=60,
        message="both workers never answered /readyz with the store ok",
    )
    return node


@pytest.fixture
def reader(node: SystemNode) -> Reader:
    return Reader(node)


# ------------------------------------------------------------ advertisements and stamps
def micros_ago(seconds: float) -> int:
    return (datetime.now(UTC) - timedelta(seconds=seconds) - EPOCH) // timedelta(microseconds=1)


def iso(micros: int) -> str:
    return (EPOCH + timedelta(microseconds=micros)).isoformat()


def advertisement(name: str, stamp: int | None = None, **fields: Any) -> dict[str, Any]:
    return {
        "registerId": uuid.uuid4().hex,
        "isPublic": True,
        "name": name,
        "description": f"the {name} ledger",
        "latestVersion": 3,
        "latestDocketVersion": 1,
        "isFullReplica": True,
        "sourceUpdatedAt": iso(stamp if stamp is not None else micros_ago(60)),
        **fields,
    }


def by_id(listing: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {row["registerId"]: row for row in listing}


def assert_lists_local(listing: list[dict[str, Any]], advertisements: list[dict[str, Any]]) -> None:
    """The list is exactly these local advertisements, as stated, verified and seen."""
    rows = by_id(listing)
    assert set(rows) == {item["registerId"] for item in advertisements}
    for item in advertisements:
        row = rows[item["registerId"]]
        assert (row["name"], row["latestVersion"], row["isLocal"]) == (item["name"], item["latestVersion"], True)
        assert row["verified"] is True and row["lastSeen"], row


def push(node: SystemNode, item: dict[str, Any]) -> dict[str, Any]:
    fields = {key: value for key, value in item.items() if key != "registerId"}
    response = node.api("POST", f"/api/registers/{item['registerId']}/advertise", json=fields)
    assert response.status_code == 200, response.text
    return dict(response.json())


def reconcile(node: SystemNode, snapshot_at: int, listed: list[dict[str, Any]]) -> dict[str, Any]:
    """A final digest page listing `listed` with the stamps they were advertised with."""
    stamps = [(datetime.fromisoformat(item["sourceUpdatedAt"]) - EPOCH) // timedelta(microseconds=1) for item in listed]
    body = {
        "snapshotAt": iso(snapshot_at),
        "registerIds": [item["registerId"] for item in listed],
        "sourceUpdatedAt": stamps,
        "final": True,
        "total": len(listed),
    }
    response = node.api("POST", "/api/registers/reconcile", json=body)
    assert response.status_code == 200, response.text
    return dict(response.json())


def counts(result: dict[str, Any]) -> tuple[int, int, int, int]:
    return result["added"], result["updated"], result["unchanged"], result["removed"]


# ------------------------------------------------------------ local writes
def test_after_a_single_push_both_workers_serve_the_same_list_with_it(node: SystemNode, reader: Reader) -> None:
    pushed = advertisement("pushed")

    assert push(node, pushed)["outcome"] == "added"

    assert_lists_local(agreed_list(reader), [pushed])


@pytest.mark.parametrize("full_sync", [False, True], ids=["bulk-advertise", "full-sync-upserts"])
def test_after_a_bulk_write_both_workers_serve_the_same_list_with_its_adds_and_updates(
    node: SystemNode, reader: Reader, full_sync: bool
) -> None:
    changed, steady = advertisement("changed", micros_ago(90)), advertisement("steady")
    node.advertise([changed, steady])
    agreed_list(reader)
    changed = {**changed, "name": "changed-again", "latestVersion": 4, "sourceUpdatedAt": iso(micros_ago(30))}
    added = advertisement("added")
    extra = {"fullSync": True, "snapshotAt": iso(micros_ago(1))} if full_sync else {}

    result = node.advertise([changed, steady, added], **extra)

    assert counts(result) == (1, 1, 1, 0), result
    assert_lists_local(agreed_list(reader), [changed, steady, added])


def test_after_a_full_sync_that_only_refreshes_both_workers_serve_the_same_later_last_seen(
    node: SystemNode, reader: Reader
) -> None:
    held = [advertisement(f"held-{n}") for n in range(3)]
    node.advertise(held)
    before = by_id(agreed_list(reader))

    result = reconcile(node, micros_ago(0.5), held)

    assert counts(result) == (0, 0, 3, 0) and result["needed"] == [] and result["complete"], result
    after = by_id(agreed_list(reader))
    assert_lists_local(list(after.values()), held)
    for register_id, row in after.items():
        earlier = before[register_id]
        assert datetime.fromisoformat(row["lastSeen"]) > datetime.fromisoformat(earlier["lastSeen"]), (earlier, row)
        assert {**row, "lastSeen": None} == {**earlier, "lastSeen": None}  # the refresh changed nothing else


@pytest.mark.parametrize("endpoint", ["bulk-advertise", "reconcile"])
def test_after_a_full_sync_sweeps_a_register_both_workers_serve_the_same_list_without_it(
    node: SystemNode, reader: Reader, endpoint: str
) -> None:
    kept, swept = [advertisement("kept-1"), advertisement("kept-2")], advertisement("swept")
    node.advertise([*kept, swept], fullSync=True, snapshotAt=iso(micros_ago(2)))
    assert_lists_local(agreed_list(reader), [*kept, swept])

    snapshot_at = micros_ago(0.5)
    if endpoint == "reconcile":
        result = reconcile(node, snapshot_at, kept)
        assert result["complete"], result
    else:
        result = node.advertise(kept, fullSync=True, snapshotAt=iso(snapshot_at), total=len(kept))

    assert counts(result) == (0, 0, 2, 1), result
    assert_lists_local(agreed_list(reader), kept)


# ------------------------------------------------------------ remote writes
def given_a_remote_set(node: SystemNode, reader: Reader) -> tuple[FakeNode, dict[str, Any], dict[str, Any]]:
    """A local advertisement, then a fake peer's signed set of one remote advertisement; both listed alike."""
    local = advertisement("at-home")
    push(node, local)
    peer = FakeNode(url="http://127.0.0.1:9", name="fake-peer")  # nothing listens: rounds to it just fail
    remote = remote_ad("far-away")

    response = peer.send(node.url, [remote])

    assert response.status_code == 200, response.text
    rows = by_id(agreed_list(reader))
    assert set(rows) == {local["registerId"], remote["registerId"]}
    row = rows[remote["registerId"]]
    assert (row["name"], row["isLocal"], row["peerCount"], row["verified"]) == (remote["name"], False, 1, True)
    assert row["lastSeen"], row
    return peer, remote, local


def test_after_a_remote_set_both_workers_serve_the_same_list_with_it(node: SystemNode, reader: Reader) -> None:
    given_a_remote_set(node, reader)


@pytest.mark.parametrize("action", ["forget", "ban"])
def test_after_an_operator_forgets_or_bans_a_peer_both_workers_serve_the_same_list_without_its_set(
    node: SystemNode, reader: Reader, action: str
) -> None:
    peer, _, local = given_a_remote_set(node, reader)
    peer_pk = next(row["id"] for row in node.peers() if row["peerId"] == peer.peer_id)

    response = node.api("POST", f"/api/peers/{peer_pk}/{action}")

    assert response.status_code == (204 if action == "forget" else 200), response.text
    assert_lists_local(agreed_list(reader), [local])


# ------------------------------------------------------------ write-back
def pool_keys(node: SystemNode) -> set[str]:
    """The advertisement keys (local and remote) the node's Redis holds."""
    client = node.redis.client()
    try:
        return {key.decode() for key in client.scan_iter(match=f"{node.prefix}:ad:*", count=1000)}
    finally:
        client.close()


def test_after_redis_comes_back_empty_and_is_written_back_both_workers_serve_the_same_list(
    node: SystemNode, reader: Reader
) -> None:
    _, remote, local = given_a_remote_set(node, reader)
    before = agreed_list(reader)
    persisted = pool_keys(node)
    assert len(persisted) == 2, persisted

    node.redis.stop()
    wait_for(
        both_workers_report(reader, "/readyz", lambda body: body["store"] == "degraded"),
        [node],
        timeout=30,
        message="both workers never reported the store degraded while Redis was down",
    )
    node.redis.start()  # no persistence: it comes back empty
    recovered = both_workers_report(reader, "/readyz", lambda body: body["store"] == "ok")
    wait_for(
        lambda: pool_keys(node) == persisted and recovered(),
        [node],
        timeout=60,
        message="the pool was never written back to Redis with both workers reporting the store ok",
    )

    after = agreed_list(reader)
    # Written back with its remaining TTL: the same entries, with the same lastSeen and verified flags.
    assert set(by_id(after)) == {local["registerId"], remote["registerId"]}
    assert after == before, disagreement({json.dumps(before): [("before", "-")], json.dumps(after): [("after", "-")]})
