"""Gossip bytes: the request and reply bodies of one exchange between two real nodes with 10,000
public registers each — the first exchange (the sets travel) and then unchanged ones (digests).

Node A reaches node B through a recording TCP proxy (its seed is the proxy's URL), so the figures
are the bytes that crossed the wire, counted after each HTTP head. With a peer that does not send
digests, every exchange costs what the first one costs here, in both directions. Target: <= 1 KB of
body per unchanged exchange, each way.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from dataclasses import dataclass, field

from bench.common import print_table, write_results
from tests.nodes import Node
from tests.redis_server import RedisServer, free_port

REGISTERS = 10_000
UNCHANGED_EXCHANGES = 3


@dataclass
class Connection:
    request: bytearray = field(default_factory=bytearray)
    reply: bytearray = field(default_factory=bytearray)


def body_bytes(raw: bytes) -> int:
    return len(raw.partition(b"\r\n\r\n")[2])


class RecordingProxy:
    """Forwards 127.0.0.1:port to the target port and keeps every connection's bytes, both ways."""

    def __init__(self, port: int, target_port: int) -> None:
        self.port, self.target_port = port, target_port
        self.connections: list[Connection] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()

    def stop(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        assert self._listener is not None
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target_port))
            record = Connection()
            with self._lock:
                self.connections.append(record)
            threading.Thread(target=self._pump, args=(client, upstream, record.request), daemon=True).start()
            threading.Thread(target=self._pump, args=(upstream, client, record.reply), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket, kept: bytearray) -> None:
        try:
            while chunk := source.recv(65536):
                kept.extend(chunk)
                sink.sendall(chunk)
        except OSError:
            pass
        finally:
            for sock in (source, sink):
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def exchanges(self) -> list[tuple[int, int]]:
        with self._lock:
            return [(body_bytes(bytes(c.request)), body_bytes(bytes(c.reply))) for c in self.connections]


def public_registers(prefix: str) -> list[dict[str, object]]:
    return [
        {
            "registerId": f"{prefix}{n:031x}",
            "isPublic": True,
            "name": f"{prefix}-register-{n}",
            "description": "a public register used by the gossip benchmark",
            "latestVersion": n,
            "latestDocketVersion": n,
            "isFullReplica": True,
        }
        for n in range(REGISTERS)
    ]


def round_through(node: Node, proxy: RecordingProxy) -> tuple[float, list[tuple[int, int]]]:
    """One gossip round on `node`; the proxy's connections it made (one, or two when a set was asked for)."""
    before = len(proxy.exchanges())
    started = time.perf_counter()
    outcome = node.gossip_round()
    elapsed = time.perf_counter() - started
    if outcome["ok"] != 1:
        raise RuntimeError(f"round failed: {outcome}\n{node.logs()}")
    time.sleep(0.2)  # the proxy's pumps finish copying
    return elapsed, proxy.exchanges()[before:]


def main() -> None:
    redis = RedisServer()
    redis.start()
    node_b = Node("gossip-b", redis)
    proxy = RecordingProxy(free_port(), node_b.port)
    # A's seed is the proxy, which is not listening yet: A's start-up round and the round its
    # advertising triggers find nobody, so the first measured exchange is the first contact.
    node_a = Node("gossip-a", redis, PEER_SEEDS=proxy.url)
    rows = []
    try:
        node_b.start_web()
        node_b.advertise(public_registers("b"))
        node_a.start_web()
        node_a.advertise(public_registers("a"))
        time.sleep(1.0)
        proxy.start()
        elapsed, first = round_through(node_a, proxy)
        rows.append(("first (sets)", len(first), *first[-1], round(elapsed, 3)))
        for index in range(UNCHANGED_EXCHANGES):
            elapsed, unchanged = round_through(node_a, proxy)
            rows.append((f"unchanged {index + 1} (digests)", len(unchanged), *unchanged[-1], round(elapsed, 3)))
        held_by_a = len(node_a.available_ids(local=False))
        held_by_b = len(node_b.available_ids(local=False))
    finally:
        proxy.stop()
        node_a.stop_all()
        node_b.stop_all()
        redis.stop()
    print_table(
        f"One gossip exchange A -> B, {REGISTERS:,} public registers on each node: body bytes on the wire",
        ["exchange", "HTTP requests", "request body", "reply body", "round (s)"],
        rows,
    )
    print(f"remote registers held: A {held_by_a:,}, B {held_by_b:,} (target: <= 1024 bytes each way when unchanged)")
    write_results(
        "gossip",
        {
            "registers": REGISTERS,
            "exchanges": [
                {"exchange": name, "requests": requests, "requestBody": request, "replyBody": reply, "seconds": seconds}
                for name, requests, request, reply, seconds in rows
            ],
            "heldByA": held_by_a,
            "heldByB": held_by_b,
        },
    )


if __name__ == "__main__":
    main()
