"""The Peer Service client tells retryable failures from permanent ones.

A gateway in front of the Peer Service (a real HTTP server here) answers with a fixed status
or stalls, as proxies do while the service behind them restarts.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from registers.peer_client import PeerServiceClient, PeerServiceRejected, PeerServiceUnavailable
from tests.redis_server import free_port

TOKEN = "client-test-token-0123456789"


class Gateway:
    """Answers every POST with `status` and `body` after `delay` seconds, and remembers the headers."""

    def __init__(self, status: int, body: bytes = b"", delay: float = 0.0) -> None:
        self.status, self.body, self.delay = status, body, delay
        self.requests: list[dict[str, str]] = []
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", 0)))
                gateway.requests.append(dict(self.headers))
                time.sleep(gateway.delay)
                self.send_response(gateway.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(gateway.body)))
                self.end_headers()
                self.wfile.write(gateway.body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gateway() -> Iterator[Callable[..., Gateway]]:
    opened: list[Gateway] = []

    def open_gateway(status: int, body: bytes = b"", delay: float = 0.0) -> Gateway:
        opened.append(Gateway(status, body, delay))
        return opened[-1]

    yield open_gateway
    for each in opened:
        each.close()


def client(url: str, read_timeout: float = 5.0) -> PeerServiceClient:
    return PeerServiceClient(url, TOKEN, connect_timeout=1.0, read_timeout=read_timeout)


@pytest.mark.parametrize("status", [500, 502, 503, 429])
def test_a_server_error_or_too_many_requests_is_retryable(gateway: Callable[..., Gateway], status: int) -> None:
    # given
    url = gateway(status).url

    # when / then
    with pytest.raises(PeerServiceUnavailable, match=str(status)):
        client(url).bulk_advertise(b"{}")


def test_an_unanswered_request_times_out_as_retryable(gateway: Callable[..., Gateway]) -> None:
    # given
    url = gateway(200, b"{}", delay=1.0).url

    # when / then
    with pytest.raises(PeerServiceUnavailable, match="timed out"):
        client(url, read_timeout=0.2).bulk_advertise(b"{}")


def test_a_refused_connection_is_retryable() -> None:
    with pytest.raises(PeerServiceUnavailable, match="could not connect"):
        client(f"http://127.0.0.1:{free_port()}").bulk_advertise(b"{}")


def test_a_client_error_is_permanent_and_logged_with_the_answer(
    gateway: Callable[..., Gateway], caplog: pytest.LogCaptureFixture
) -> None:
    # given
    url = gateway(400, b'{"detail":"advertisements[0].registerId: bad"}').url

    # when
    with pytest.raises(PeerServiceRejected) as refused:
        client(url).bulk_advertise(b"{}")

    # then
    assert refused.value.status == 400
    [record] = [r for r in caplog.records if "event=peer_request_rejected" in r.getMessage()]
    assert record.levelno == logging.ERROR
    assert "advertisements[0].registerId: bad" in record.getMessage()


def test_requests_carry_the_bearer_token_and_json(gateway: Callable[..., Gateway]) -> None:
    # given
    peer = gateway(200, b'{"processed":0}')

    # when
    answer = client(peer.url).bulk_advertise(b"{}")

    # then
    assert answer == {"processed": 0}
    [headers] = peer.requests
    assert headers["Authorization"] == f"Bearer {TOKEN}"
    assert headers["Content-Type"] == "application/json"
