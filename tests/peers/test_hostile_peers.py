"""Hostile peers against real nodes (issue 11): separate gunicorn processes, real HTTP, real Redis.

The attackers are key pairs in this process (`FakeNode`) and small socket servers; the
nodes under attack are real. What each test proves is written in its name.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families

from peers.gossip.rounds import ROUND_MARGIN
from tests.nodes import Node, wait_for
from tests.peers.fake_peers import CountingListener, FakeNode, SocketServer, Trickler, long_ago, remote_ad
from tests.plugin import SESSION_REDIS

MakeNode = Callable[..., Node]


@pytest.fixture
def make_node() -> Iterator[MakeNode]:
    nodes: list[Node] = []

    def make(name: str, seeds: list[Node] | None = None, start: bool = True, **settings: Any) -> Node:
        if seeds:
            settings["PEER_SEEDS"] = ",".join(seed.url for seed in seeds)
        node = Node(name, SESSION_REDIS, **settings)
        nodes.append(node)
        if start:
            node.start_web()
        return node

    yield make
    for node in nodes:
        node.stop_all()


@pytest.fixture
def servers() -> Iterator[list[SocketServer]]:
    started: list[SocketServer] = []
    yield started
    for server in started:
        server.stop()


def peer_by(node: Node, **match: Any) -> dict[str, Any] | None:
    return next((peer for peer in node.peers() if all(peer.get(k) == v for k, v in match.items())), None)


def metric_samples(node: Node) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = node.api("GET", "/metrics").text
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def worker_rss_kib(node: Node) -> int:
    """Resident memory of the node's one gunicorn worker (the master's child), from /proc."""
    process = node.processes["web"].popen
    assert process is not None
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("PPid", "").strip() == str(process.pid):
            return int(fields["VmRSS"].split()[0])
    raise AssertionError(f"no gunicorn worker under {process.pid}")


def error_lines(node: Node) -> str:
    """The web process's error lines (with their traceback), once they have reached the log."""

    def found() -> list[str]:
        lines = list(node.processes["web"].log)
        start = next((i for i, line in enumerate(lines) if "level=ERROR" in line or "Traceback" in line), None)
        return [] if start is None else lines[start : start + 60]

    try:
        return "\n".join(wait_for(found, [], timeout=3))
    except AssertionError:
        return "(a 500 without an error line in the log tail)"


# ---------------------------------------------------------------- case 1: the Sybil flood
FLOOD_IDENTITIES = 300
FLOOD_ADS = 200
FLOOD_MAX_PEERS = 200
FLOOD_MAX_REMOTE_ADS = 20_000
RSS_GROWTH_BOUND_MIB = 160


def test_a_sybil_flood_stays_within_every_cap_and_the_web_process_memory_stays_bounded(make_node: MakeNode) -> None:
    node = make_node(
        "target",
        GOSSIP_MAX_PEERS=FLOOD_MAX_PEERS,
        GOSSIP_MAX_REMOTE_ADS=FLOOD_MAX_REMOTE_ADS,
        GOSSIP_RATE_PER_ADDRESS=1_000_000,  # every attacker is on 127.0.0.1: the caps are under test here
        GOSSIP_RATE_PER_PEER=1_000_000,
        LOG_LEVEL="ERROR",  # hundreds of refusals are expected: keep only what would explain a failure
    )
    shared = uuid.uuid4().hex  # every Sybil advertises this one register too
    warm = FakeNode()
    assert warm.send(node.url, [remote_ad()]).status_code == 200
    rss_before = worker_rss_kib(node)

    server_errors: list[str] = []

    def flood(identity: int, ads: int) -> int:
        sybil = FakeNode(url=f"http://sybil-{identity}.example", name=f"sybil-{identity}")
        advertisements = [remote_ad(f"s{identity}-{n}", description="x" * 400) for n in range(ads - 1)]
        advertisements.append({"registerId": shared, "name": "pay-here", "latestVersion": 1})
        response = sybil.send(node.url, advertisements)
        if response.status_code >= 500:
            server_errors.append(error_lines(node))
        return response.status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        # Hundreds of identities with hundreds of ads each, then more empty identities.
        statuses = list(pool.map(lambda i: flood(i, FLOOD_ADS), range(FLOOD_IDENTITIES)))
        statuses += list(pool.map(lambda i: flood(i, 1), range(FLOOD_IDENTITIES, FLOOD_IDENTITIES + 150)))

    rss_after = worker_rss_kib(node)
    growth_mib = (rss_after - rss_before) / 1024
    print(f"\nSybil flood: {len(statuses)} identities, web worker RSS {rss_before // 1024} -> {rss_after // 1024} MiB")
    print(f"Sybil flood: RSS growth {growth_mib:.1f} MiB for {FLOOD_MAX_REMOTE_ADS} remote advertisements held")
    assert statuses.count(413) > 0 and statuses.count(429) > 0
    assert set(statuses) <= {200, 413, 429}, "\n".join(server_errors)
    peers = node.peers()
    assert len(peers) <= FLOOD_MAX_PEERS
    status = node.api("GET", "/api/store/status").json()
    assert status["remoteAdvertisements"] <= FLOOD_MAX_REMOTE_ADS
    row = next(row for row in node.available() if row["registerId"] == shared)
    assert row["peerCount"] <= FLOOD_MAX_PEERS
    samples = metric_samples(node)
    assert samples[("sorcha_gossip_refusals_total", (("reason", "remote_ads_cap"),))] == statuses.count(413)
    assert samples[("sorcha_gossip_refusals_total", (("reason", "peer_cap"),))] == statuses.count(429)
    assert samples[("sorcha_remote_advertisements_held", ())] <= FLOOD_MAX_REMOTE_ADS
    assert growth_mib < RSS_GROWTH_BOUND_MIB
    # The operator can still close the door: ban one and it is gone at once.
    sybil_row = next(peer for peer in peers if peer["advertisementsHeld"] > 1)
    assert node.api("POST", f"/api/peers/{sybil_row['id']}/ban").json()["advertisementsHeld"] == 0


def test_the_rate_limit_is_shared_by_every_web_process_and_answered_with_retry_after(make_node: MakeNode) -> None:
    node = make_node("rated", start=False, GOSSIP_RATE_PER_ADDRESS=5, GOSSIP_RATE_WINDOW=60)
    node.start_web(workers=2)

    responses = [FakeNode().send(node.url, [remote_ad()]) for _ in range(9)]

    assert [response.status_code for response in responses] == [200] * 5 + [429] * 4
    assert all(1 <= int(response.headers["Retry-After"]) <= 61 for response in responses[5:])
    assert len(node.peers()) == 5


# ---------------------------------------------------------------- case 2: URL takeover, replays
def test_a_stranger_claiming_a_peers_url_takes_nothing_and_the_real_peer_keeps_exchanging(
    make_node: MakeNode,
) -> None:
    node_a = make_node("a")
    node_v = make_node("v", seeds=[node_a])
    node_a.advertise([{**remote_ad("from-a"), "isPublic": True}])
    # V's start-up round introduced it to A; A calls V's claimed URL and V's signed reply binds it.
    wait_for(
        lambda: node_a.gossip_round() and peer_by(node_a, url=node_v.url),
        [node_a, node_v],
        message="A never bound V's URL",
    )
    victim_id = peer_by(node_a, url=node_v.url)["peerId"]  # type: ignore[index]
    thief = FakeNode(url=node_v.url, name="thief")

    assert thief.send(node_a.url, [remote_ad("pay-here")]).status_code == 200

    row = peer_by(node_a, peerId=victim_id)
    assert row is not None and row["url"] == node_v.url
    thief_row = peer_by(node_a, peerId=thief.peer_id)
    assert thief_row is not None and thief_row["url"] is None and thief_row["claimedUrl"] == node_v.url
    assert not any("#" in (peer["url"] or "") for peer in node_a.peers())

    outcome = node_a.gossip_round()  # V's URL is called once, for V's row: it still answers as V

    assert outcome["ok"] >= 1
    row = peer_by(node_a, peerId=victim_id)
    assert row is not None and row["url"] == node_v.url and row["lastExchangeResult"] == "ok"
    thief_row = peer_by(node_a, peerId=thief.peer_id)
    assert thief_row is not None and thief_row["url"] is None
    assert node_v.url not in {peer["url"] for peer in node_a.peers() if peer["peerId"] != victim_id}


def test_a_seed_is_bound_to_the_node_that_answers_there_not_to_the_first_claimant(make_node: MakeNode) -> None:
    node_s = make_node("seed", start=False)  # its URL is known before it runs
    node_c = make_node("c", seeds=[node_s])
    # C's start-up round writes the seed row (and finds nobody answering there).
    wait_for(lambda: peer_by(node_c, url=node_s.url), [node_c], message="C never listed its seed")
    thief = FakeNode(url=node_s.url, name="thief")

    assert thief.send(node_c.url, [remote_ad()]).status_code == 200
    seed_row = peer_by(node_c, url=node_s.url)
    assert seed_row is not None and seed_row["isSeed"] and seed_row["peerId"] is None

    node_s.start_web()
    node_c.gossip_round()

    seed_row = peer_by(node_c, url=node_s.url)
    assert seed_row is not None and seed_row["isSeed"] and seed_row["lastExchangeResult"] == "ok"
    assert seed_row["peerId"] not in (None, thief.peer_id)
    assert peer_by(node_c, peerId=thief.peer_id)["url"] is None  # type: ignore[index]


@pytest.fixture(scope="module")
def closed_node() -> Iterator[Node]:
    """A node with private addresses off (the production default): the door the next tests knock on."""
    node = Node("closed", SESSION_REDIS, GOSSIP_ALLOW_PRIVATE="false", GOSSIP_EXCHANGE_DEADLINE="3")
    node.start_web()
    yield node
    node.stop_all()


def test_a_replayed_old_message_is_refused_before_anything_is_recorded(closed_node: Node) -> None:
    node = FakeNode(url="http://first.example")
    old_body, old_signature = node.signed([remote_ad("old")])
    assert node.post_to(closed_node.url, old_body, old_signature).status_code == 200
    node.url = "http://second.example"
    current = remote_ad("current")
    assert node.send(closed_node.url, [current]).status_code == 200

    replay = node.post_to(closed_node.url, old_body, old_signature)

    assert replay.status_code == 409 and replay.json()["detail"].startswith("sequence:")
    row = peer_by(closed_node, peerId=node.peer_id)
    assert row is not None and row["claimedUrl"] == "http://second.example" and row["url"] is None
    held = {r["registerId"] for r in closed_node.available() if not r["isLocal"]}
    assert current["registerId"] in held


def test_a_message_sent_long_ago_is_refused_naming_sent_at(closed_node: Node) -> None:
    node = FakeNode()

    response = node.send(closed_node.url, [remote_ad()], sentAt=long_ago(3600))

    assert response.status_code == 400
    assert response.json()["detail"].startswith("sentAt:")
    assert peer_by(closed_node, peerId=node.peer_id) is None


# ---------------------------------------------------------------- case 3: SSRF
def test_with_private_addresses_off_link_local_and_loopback_urls_are_never_contacted(
    closed_node: Node, servers: list[SocketServer]
) -> None:
    listener = CountingListener()
    servers.append(listener)
    sender = FakeNode(url="http://169.254.169.254")  # cloud metadata
    learnt = [
        {"url": f"http://localhost:{listener.port}"},
        {"url": "http://[fe80::1]:8000"},
        {"url": "http://169.254.169.254/latest/meta-data"},
    ]

    assert sender.send(closed_node.url, [], peers=learnt, url="http://169.254.169.254").status_code == 200
    assert sender.send(closed_node.url, [], url=listener.url).status_code == 200  # now claims the listener
    started = time.monotonic()
    closed_node.gossip_round()
    elapsed = time.monotonic() - started

    assert listener.connections == 0
    errors = {peer["claimedUrl"] or peer["url"]: peer["lastError"] for peer in closed_node.peers()}
    assert "loopback" in errors[listener.url]
    assert "loopback" in errors[f"http://localhost:{listener.port}"]
    assert "link-local" in errors["http://[fe80::1]:8000"]
    assert "link-local" in errors["http://169.254.169.254/latest/meta-data"]
    assert elapsed < 3  # refused by the check, no connect attempted


def test_a_link_local_url_is_refused_even_with_private_addresses_on(make_node: MakeNode) -> None:
    node = make_node("open-private")  # GOSSIP_ALLOW_PRIVATE=true, as in development
    sender = FakeNode(url="http://169.254.169.254")

    assert sender.send(node.url, []).status_code == 200
    node.gossip_round()

    row = peer_by(node, peerId=sender.peer_id)
    assert row is not None and row["lastError"] == "address refused: 169.254.169.254 is link-local"


# ---------------------------------------------------------------- case 4: stalls
def test_trickling_peers_cannot_hold_a_round_past_its_deadline(
    make_node: MakeNode, servers: list[SocketServer]
) -> None:
    deadline = 3.0
    node_a = make_node("honest")
    honest = {**remote_ad("honest-register"), "isPublic": True}
    node_a.advertise([honest])
    node_b = make_node("b", seeds=[node_a], GOSSIP_EXCHANGE_DEADLINE=deadline, GOSSIP_ROUND_WORKERS=4)

    def met_seed() -> bool:  # then no start-up round is in flight when the round below starts
        if (peer_by(node_b, isSeed=True) or {}).get("lastExchangeResult") == "ok":
            return True
        node_b.gossip_round()
        return False

    wait_for(met_seed, [node_a, node_b], message="B never met its seed")
    tricklers = [Trickler() for _ in range(6)]
    servers.extend(tricklers)
    for trickler in tricklers:
        assert FakeNode(url=trickler.url).send(node_b.url, []).status_code == 200

    started = time.monotonic()
    outcome = node_b.gossip_round()
    elapsed = time.monotonic() - started

    print(f"\nround with {len(tricklers)} trickling peers took {elapsed:.2f} s (deadline {deadline:g} s)")
    assert elapsed < deadline + ROUND_MARGIN + 1.0  # + the API call itself
    assert outcome["ok"] >= 1  # the seed goes first, whatever the others do
    assert honest["registerId"] in node_b.available_ids(local=False)
    assert sum(trickler.connections for trickler in tricklers) >= 3
