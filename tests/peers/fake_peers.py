"""Hostile and scripted peers for gossip tests: signing key pairs and small real socket servers.

A `FakeNode` signs messages the way a real node does (it is an identity, not a process). The
servers are real listeners on 127.0.0.1 that record what reaches them: a listener that only
counts connections, a trickler that answers one byte every half second, and a canned HTTP
responder (status, headers and body of the test's choosing).
"""

from __future__ import annotations

import socket
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from peers.identity import peer_id_for

RAW = serialization.Encoding.Raw
EXCHANGE = "/api/peers/exchange"
SIGNATURE_HEADER = "X-Sorcha-Signature"


class FakeNode:
    """Another node's key pair, used to sign messages the way a real node does."""

    def __init__(self, url: str = "http://127.0.0.1:9", name: str = "remote") -> None:
        self.key = Ed25519PrivateKey.generate()
        self.public_key = self.key.public_key().public_bytes(RAW, serialization.PublicFormat.Raw).hex()
        self.peer_id = peer_id_for(self.public_key)
        self.url = url
        self.name = name
        self.sequence = int(datetime.now(tz=UTC).timestamp() * 1_000_000)

    def message(self, advertisements: list[dict[str, Any]], **overrides: Any) -> dict[str, Any]:
        self.sequence += 1
        return {
            "peerId": self.peer_id,
            "publicKey": self.public_key,
            "url": self.url,
            "name": self.name,
            "sequence": self.sequence,
            "sentAt": datetime.now(tz=UTC).isoformat(),
            "advertisements": advertisements,
            "peers": [],
            **overrides,
        }

    def relay_message(self, step: dict[str, Any]) -> tuple[bytes, str]:
        """A signed message of the relay exchange: this node's envelope and one anti-entropy step
        (`originsDigest`, `originVersions`, `records`), with the relay header's fields only."""
        message = self.message([])
        del message["advertisements"]
        body = orjson.dumps({**message, **step})
        return body, self.sign(body)

    def sign(self, body: bytes) -> str:
        return self.key.sign(body).hex()

    def signed(self, advertisements: list[dict[str, Any]], **overrides: Any) -> tuple[bytes, str]:
        body = orjson.dumps(self.message(advertisements, **overrides))
        return body, self.sign(body)

    def post_to(self, base_url: str, body: bytes, signature: str, timeout: float = 30) -> requests.Response:
        return requests.post(
            f"{base_url}{EXCHANGE}",
            data=body,
            headers={"Content-Type": "application/json", SIGNATURE_HEADER: signature},
            timeout=timeout,
        )

    def send(self, base_url: str, advertisements: list[dict[str, Any]], **overrides: Any) -> requests.Response:
        body, signature = self.signed(advertisements, **overrides)
        return self.post_to(base_url, body, signature)


def remote_ad(name: str = "remote-ledger", description: str = "", **fields: Any) -> dict[str, Any]:
    return {
        "registerId": uuid.uuid4().hex,
        "name": name,
        "description": description,
        "latestVersion": 2,
        "isFullReplica": True,
        **fields,
    }


def long_ago(seconds: float) -> str:
    return (datetime.now(tz=UTC) - timedelta(seconds=seconds)).isoformat()


class SocketServer:
    """A TCP listener on 127.0.0.1 whose connections are handled by `serve(conn)` in threads."""

    def __init__(self) -> None:
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.url = f"http://127.0.0.1:{self.port}"
        self.connections = 0
        self.requests: list[bytes] = []
        self.stopped = threading.Event()
        self._lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with self._lock:
                self.connections += 1
            threading.Thread(target=self._handle, args=(conn,), daemon=True).start()

    def _handle(self, conn: socket.socket) -> None:
        try:
            self.serve(conn)
        except OSError:
            pass
        finally:
            conn.close()

    def serve(self, conn: socket.socket) -> None:
        raise NotImplementedError

    def read_request(self, conn: socket.socket) -> bytes:
        """The request head and as much body as Content-Length announces."""
        conn.settimeout(10)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return data
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        with self._lock:
            self.requests.append(head)
        return head

    def stop(self) -> None:
        self.stopped.set()
        self.sock.close()


class CountingListener(SocketServer):
    """Accepts and closes: proves whether anything connected at all."""

    def serve(self, conn: socket.socket) -> None:
        return


class Trickler(SocketServer):
    """Reads the request, then answers one byte every 0.5 s until the caller gives up (or 10 minutes)."""

    def serve(self, conn: socket.socket) -> None:
        self.read_request(conn)
        payload = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n" + b" " * 100000
        for byte in payload:
            if self.stopped.wait(0.5):
                return
            conn.sendall(bytes([byte]))


class CannedHTTP(SocketServer):
    """Answers every request with the given status line, headers and body."""

    def __init__(self, status: str, headers: dict[str, str] | None = None, body: bytes = b"") -> None:
        self.status = status
        self.headers = headers or {}
        self.body = body
        super().__init__()

    def serve(self, conn: socket.socket) -> None:
        self.read_request(conn)
        head = f"HTTP/1.1 {self.status}\r\nContent-Length: {len(self.body)}\r\nConnection: close\r\n"
        head += "".join(f"{name}: {value}\r\n" for name, value in self.headers.items())
        conn.sendall(head.encode() + b"\r\n" + self.body)


class EndlessReply(SocketServer):
    """Answers 200 and streams a body with no end and no Content-Length, as fast as it can."""

    def serve(self, conn: socket.socket) -> None:
        self.read_request(conn)
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n")
        chunk = b"x" * 65536
        while not self.stopped.is_set():
            conn.sendall(chunk)
