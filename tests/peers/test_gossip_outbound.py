"""Outbound gossip (issue 11, cases 3 and 4): vetted addresses, no redirects, no bodies kept, one deadline.

Every peer here is a real socket server on 127.0.0.1 (tests/peers/fake_peers.py); the node's
side is called in-process, so what reached the server is known exactly.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from peers import outbound
from peers.gossip import rounds
from peers.gossip.exchange import exchange_with
from peers.models import Peer
from peers.store import AdvertisementStore
from tests.helpers import wait_until
from tests.peers.fake_peers import CannedHTTP, CountingListener, EndlessReply, SocketServer, Trickler


@pytest.fixture
def servers() -> Iterator[list[SocketServer]]:
    started: list[SocketServer] = []
    yield started
    for server in started:
        server.stop()


def serve(servers: list[SocketServer], server: SocketServer) -> Any:
    servers.append(server)
    return server


@pytest.mark.parametrize(
    ("address", "private_allowed", "refused_as"),
    [
        ("169.254.169.254", True, "link-local"),
        ("fe80::1", True, "link-local"),
        ("::ffff:169.254.169.254", True, "link-local"),
        ("224.0.0.1", True, "multicast"),
        ("ff02::1", True, "multicast"),
        ("0.0.0.0", True, "unspecified"),  # noqa: S104 - the address under test
        ("::", True, "unspecified"),
        ("127.0.0.1", False, "loopback"),
        ("::1", False, "loopback"),
        ("10.1.2.3", False, "private"),
        ("192.168.1.1", False, "private"),
        ("240.0.0.1", True, "reserved"),
        ("127.0.0.1", True, None),
        ("10.1.2.3", True, None),
        ("93.184.216.34", False, None),
        ("2606:4700:4700::1111", False, None),
    ],
)
def test_addresses_are_vetted_before_any_call(address: str, private_allowed: bool, refused_as: str | None) -> None:
    problem = outbound.address_problem(address, private_allowed)

    if refused_as is None:
        assert problem is None
    else:
        assert problem is not None and refused_as in problem


pytestmark = pytest.mark.django_db


def exchange(url: str, **row: Any) -> tuple[str, Peer, float]:
    peer = Peer.objects.create(url=url, **row)
    started = time.monotonic()
    outcome = exchange_with(peer)
    elapsed = time.monotonic() - started
    peer.refresh_from_db()
    return outcome, peer, elapsed


def test_with_private_addresses_off_a_loopback_listener_gets_no_connection(
    peer_store: AdvertisementStore, settings: Any, servers: list[SocketServer]
) -> None:
    settings.GOSSIP_ALLOW_PRIVATE = False
    listener = serve(servers, CountingListener())

    outcome, peer, _ = exchange(listener.url)
    name_outcome, named, _ = exchange(f"http://localhost:{listener.port}")

    assert (outcome, name_outcome) == ("refused_address", "refused_address")
    assert "loopback" in peer.last_error and "loopback" in named.last_error
    assert listener.connections == 0


@pytest.mark.parametrize(
    "url", ["http://169.254.169.254/latest/meta-data", "http://[fe80::1]:8000", "http://[::ffff:a9fe:a9fe]"]
)
def test_a_link_local_url_is_refused_before_any_connect_even_with_private_addresses_on(
    peer_store: AdvertisementStore, settings: Any, url: str
) -> None:
    settings.GOSSIP_ALLOW_PRIVATE = True

    outcome, peer, elapsed = exchange(url)

    assert outcome == "refused_address"
    assert peer.last_error.startswith("address refused:") and "link-local" in peer.last_error
    assert elapsed < 1.0  # refused by the check, not by a connect timing out
    assert peer.consecutive_failures == 1


def test_a_seed_is_the_operators_choice_and_always_called(
    peer_store: AdvertisementStore, settings: Any, servers: list[SocketServer]
) -> None:
    settings.GOSSIP_ALLOW_PRIVATE = False
    listener = serve(servers, CountingListener())
    settings.PEER_SEEDS = [listener.url]

    outcome, _, _ = exchange(listener.url, is_seed=True)

    assert outcome == "unreachable"  # it closed the connection without answering
    assert listener.connections == 1


def test_last_error_keeps_the_status_and_never_the_peers_body(
    peer_store: AdvertisementStore, servers: list[SocketServer]
) -> None:
    server = serve(servers, CannedHTTP("500 Oops", body=b"SECRET-INSTANCE-CREDENTIALS " * 20))

    outcome, peer, _ = exchange(server.url)

    assert outcome == "rejected"
    assert peer.last_error == "HTTP 500 Internal Server Error"
    assert "SECRET" not in peer.last_error and "Oops" not in peer.last_error


def test_a_redirect_is_not_followed(peer_store: AdvertisementStore, servers: list[SocketServer]) -> None:
    elsewhere = serve(servers, CountingListener())
    server = serve(servers, CannedHTTP("302 Found", headers={"Location": f"{elsewhere.url}/api/peers/exchange"}))

    outcome, peer, _ = exchange(server.url)

    assert outcome == "rejected"
    assert peer.last_error == "HTTP 302 Found"
    assert elsewhere.connections == 0


def test_a_trickling_peer_cannot_hold_an_exchange_past_its_deadline(
    peer_store: AdvertisementStore, settings: Any, servers: list[SocketServer]
) -> None:
    settings.GOSSIP_EXCHANGE_DEADLINE = 2.0
    trickler = serve(servers, Trickler())

    outcome, peer, elapsed = exchange(trickler.url)

    assert outcome == "unreachable"
    assert "deadline" in peer.last_error
    assert elapsed < 2.0 + 0.75


def test_an_endless_reply_is_cut_at_the_size_cap_while_streaming(
    peer_store: AdvertisementStore, settings: Any, servers: list[SocketServer]
) -> None:
    settings.GOSSIP_MAX_BODY_BYTES = 1_000_000
    server = serve(servers, EndlessReply())

    outcome, peer, elapsed = exchange(server.url)

    assert outcome == "unreachable"
    assert peer.last_error == "reply is over GOSSIP_MAX_BODY_BYTES (1000000)"
    assert elapsed < settings.GOSSIP_EXCHANGE_DEADLINE


@pytest.mark.django_db(transaction=True)
def test_a_round_contacts_peers_concurrently_and_ends_within_one_deadline(
    peer_store: AdvertisementStore, settings: Any, servers: list[SocketServer]
) -> None:
    settings.GOSSIP_EXCHANGE_DEADLINE = 2.0
    settings.GOSSIP_ROUND_WORKERS = 3
    tricklers = [serve(servers, Trickler()) for _ in range(8)]
    for trickler in tricklers:
        Peer.objects.create(url=trickler.url)

    started = time.monotonic()
    outcome = rounds.gossip_round(force=True)
    elapsed = time.monotonic() - started

    assert elapsed < 2.0 + rounds.ROUND_MARGIN
    assert outcome["peers"] == 8
    assert outcome["ok"] == 0
    assert outcome["failed"] + outcome["skipped"] == 8
    assert sum(trickler.connections for trickler in tricklers) >= 3  # three at once, not one after another


@pytest.mark.django_db(transaction=True)
def test_triggered_rounds_are_single_flight_per_process(
    peer_store: AdvertisementStore, settings: Any, servers: list[SocketServer], monkeypatch: pytest.MonkeyPatch
) -> None:
    # A round an earlier test set off in this process (a local change, a set taken) ends first.
    wait_until(rounds.triggered_rounds_settled, timeout=30, message="an earlier test's round never ended")
    settings.GOSSIP_EXCHANGE_DEADLINE = 1.0
    settings.GOSSIP_TRIGGER_DELAY = 0.01
    Peer.objects.create(url=serve(servers, Trickler()).url)
    real_round = rounds.gossip_round
    running, most, started = [0], [0], [0]
    lock = threading.Lock()

    def counted_round(force: bool = False) -> dict[str, int]:
        with lock:
            running[0] += 1
            started[0] += 1
            most[0] = max(most[0], running[0])
        try:
            return real_round(force)
        finally:
            with lock:
                running[0] -= 1

    monkeypatch.setattr(rounds, "gossip_round", counted_round)
    triggers_until = time.monotonic() + 3.0
    while time.monotonic() < triggers_until:  # a burst of local changes, one every few milliseconds
        rounds.trigger_round()
        time.sleep(0.005)
    wait_until(
        rounds.triggered_rounds_settled,
        timeout=10,
        message="the triggered rounds never settled",
    )

    assert most[0] == 1
    assert 2 <= started[0] <= 6  # about one per deadline, plus the one asked for during the last


def self_signed_certificate(directory: Any) -> tuple[str, str]:
    import datetime as dt

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(tz=dt.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(days=1))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return str(cert_path), str(key_path)


class TLSListener(SocketServer):
    """A TLS server with a certificate nobody trusts: records whether a handshake completed."""

    def __init__(self, cert: str, key: str) -> None:
        import ssl

        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.load_cert_chain(cert, key)
        self.handshakes = 0
        super().__init__()

    def serve(self, conn: Any) -> None:
        import ssl

        try:
            with self.context.wrap_socket(conn, server_side=True) as tls:
                self.handshakes += 1
                self.read_request(tls)
        except ssl.SSLError:
            return


def test_an_https_peer_is_called_at_the_vetted_address_and_its_certificate_checked_for_the_name(
    peer_store: AdvertisementStore, servers: list[SocketServer], tmp_path: Any
) -> None:
    cert, key = self_signed_certificate(tmp_path)
    server = serve(servers, TLSListener(cert, key))

    outcome, peer, _ = exchange(f"https://localhost:{server.port}")

    assert server.connections == 1  # the connection went to the address checked for "localhost"
    assert outcome == "unreachable"
    assert peer.last_error == "connection: SSLCertVerificationError"
    assert server.handshakes == 0
