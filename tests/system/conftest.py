"""Fixtures of the system tests: whole nodes as real processes, each on a redis-server of its own."""

from __future__ import annotations

import shutil
from collections.abc import Callable, Generator, Iterator
from typing import Any

import pytest

from tests.redis_server import RedisServer
from tests.system import start_orders
from tests.system.harness import SystemNode

NODES = pytest.StashKey[list[SystemNode]]()

MakeNode = Callable[..., SystemNode]


@pytest.fixture
def make_node(request: pytest.FixtureRequest) -> Iterator[MakeNode]:
    """Build a node (not started) with its own private redis-server; everything is killed at teardown."""
    nodes: list[SystemNode] = []
    servers: list[RedisServer] = []
    request.node.stash[NODES] = nodes

    def make(name: str, seeds: tuple[SystemNode, ...] = (), **settings: Any) -> SystemNode:
        server = RedisServer()
        server.start()
        servers.append(server)
        if seeds:
            settings["PEER_SEEDS"] = ",".join(seed.peer_url for seed in seeds)
        node = SystemNode(name, server, **settings)
        nodes.append(node)
        return node

    yield make
    for node in nodes:
        node.cleanup()
    for server in servers:
        server.stop()
        shutil.rmtree(server.workdir, ignore_errors=True)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Generator[None, Any, None]:
    """A failed test shows every process's log tail (wait_for puts them in its message already)."""
    outcome = yield
    report = outcome.get_result()
    nodes = item.stash.get(NODES, [])
    if report.failed and nodes and "=== start #" not in report.longreprtext:
        report.sections.append(("process logs", "\n".join(node.logs() for node in nodes)))


def pytest_terminal_summary(terminalreporter: Any) -> None:
    if start_orders.SAMPLED and start_orders.SEED is not None:
        terminalreporter.write_line(
            f"SC-006 start orders: a sample of {len(start_orders.ORDERS)} of 24, seed {start_orders.SEED} "
            f"(repeat with SORCHA_START_ORDER_SEED={start_orders.SEED}; all 24 with SORCHA_ALL_START_ORDERS=1)"
        )
