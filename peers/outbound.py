"""Outbound gossip calls to URLs strangers gave us: checked, pinned to a vetted address, and deadlined.

A peer URL comes from another node's message, so it is treated like any user-supplied URL
(OWASP's SSRF advice): http or https only, resolved first, every resolved address checked,
and the connection made to the address that was checked (a second DNS answer cannot send it
elsewhere). No redirect is followed. The whole exchange — resolve, connect, send, read —
ends at one deadline: a watchdog shuts the socket when it passes, so a peer trickling one
byte at a time cannot hold it open, and the reply is read in chunks under a running size cap.
"""

from __future__ import annotations

import contextlib
import http.client
import ipaddress
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from http import HTTPStatus
from urllib.parse import urlsplit

from django.conf import settings

URL_MAX_LENGTH = 200
_READ_CHUNK = 64 * 1024
# A 409 answer's body is read (to this many bytes) for its caller to tell what the peer needs.
CONFLICT_BODY_MAX = 4096


class OutboundRefused(Exception):
    """The URL or its address is not one this node will call; nothing was sent."""


class ExchangeFailed(Exception):
    """The call was made and failed; the message is short and never quotes the peer's body.

    `status`: the peer's HTTP status when it answered with another than 200; `body`: the start of
    a 409 answer's body (for the caller to read, never to show).
    """

    def __init__(self, message: str, status: int | None = None, body: bytes = b"") -> None:
        super().__init__(message)
        self.status = status
        self.body = body


def normalise_url(raw: str) -> str:
    """`scheme://host[:port][/path]` in lower case without a trailing slash; ValueError says why not."""
    if len(raw) > URL_MAX_LENGTH:
        raise ValueError(f"is longer than {URL_MAX_LENGTH} characters")
    try:
        parts = urlsplit(raw.strip())
        port = parts.port
    except ValueError as exc:
        raise ValueError(f"is not a valid URL ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https"):
        raise ValueError("must be an http or https URL")
    if not parts.hostname or parts.username is not None or parts.password is not None:
        raise ValueError("must name a host and carry no credentials")
    if parts.query or parts.fragment:
        raise ValueError("must not carry a query or a fragment")
    host = parts.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    default_port = 443 if scheme == "https" else 80
    netloc = host if port is None or port == default_port else f"{host}:{port}"
    url = f"{scheme}://{netloc}{parts.path.rstrip('/')}"
    if any(c.isspace() or ord(c) < 32 for c in url):
        raise ValueError("must not contain spaces or control characters")
    if len(url) > URL_MAX_LENGTH:
        raise ValueError(f"is longer than {URL_MAX_LENGTH} characters")
    return url


def seed_urls() -> set[str]:
    urls = set()
    for seed in settings.PEER_SEEDS:
        try:
            urls.add(normalise_url(seed))
        except ValueError:
            continue
    return urls


def address_problem(address: str, allow_private: bool) -> str | None:
    """Why this node will not call `address`, or None. Link-local, multicast and unspecified: never."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if ip.is_unspecified:
        return f"{ip} is unspecified"
    if ip.is_link_local:
        return f"{ip} is link-local"
    if ip.is_multicast:
        return f"{ip} is multicast"
    if ip.is_loopback:
        return None if allow_private else f"{ip} is loopback (GOSSIP_ALLOW_PRIVATE is off)"
    if ip.is_reserved:
        return f"{ip} is reserved"
    if ip.is_private:
        return None if allow_private else f"{ip} is private (GOSSIP_ALLOW_PRIVATE is off)"
    if not ip.is_global:
        return f"{ip} is reserved"
    return None


@dataclass(frozen=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    path: str
    addresses: tuple[str, ...]


def _lookup(host: str, port: int, deadline: float) -> list[str]:
    """getaddrinfo cannot be interrupted: it runs in a daemon thread that is abandoned at the deadline."""
    found: list[str] = []
    failure: list[str] = []

    def look() -> None:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
            found.extend(dict.fromkeys(str(info[4][0]) for info in infos))
        except (OSError, UnicodeError) as exc:
            failure.append(type(exc).__name__)

    thread = threading.Thread(target=look, daemon=True)
    thread.start()
    thread.join(max(deadline - time.monotonic(), 0))
    if thread.is_alive():
        raise ExchangeFailed("DNS: no answer before the deadline")
    if failure:
        raise ExchangeFailed(f"DNS: {failure[0]}")
    return found


def resolve(url: str, path: str, deadline: float) -> Target:
    """The vetted address to call for `url` (OutboundRefused when none may be called)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise OutboundRefused("url: only http and https URLs are called")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    addresses = _lookup(parts.hostname, port, deadline)
    if not addresses:
        raise ExchangeFailed("DNS: no address")
    seed = url in seed_urls()  # the operator's own choice: always called
    allow_private = bool(settings.GOSSIP_ALLOW_PRIVATE)
    for address in addresses:
        problem = None if seed else address_problem(address, allow_private)
        if problem is not None:
            # One bad answer refuses the name: a rebinding name may hand out both kinds.
            raise OutboundRefused(f"address refused: {problem}")
    return Target(url, parts.scheme, parts.hostname, port, parts.path.rstrip("/") + path, tuple(addresses))


def _connect(addresses: tuple[str, ...], port: int, timeout: float | None, deadline: float) -> socket.socket:
    """The first vetted address that accepts, before the deadline; never a fresh DNS answer (no rebinding)."""
    error: OSError | None = None
    for address in addresses:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError("deadline passed while connecting")
        try:
            sock = socket.create_connection((address, port), min(timeout or remaining, remaining))
        except OSError as exc:
            error = exc
            continue
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock
    raise error or OSError("no address")


class _PinnedHTTP(http.client.HTTPConnection):
    def __init__(self, target: Target, timeout: float, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout)
        self._addresses = target.addresses
        self._deadline = deadline

    def connect(self) -> None:
        self.sock = _connect(self._addresses, self.port, self.timeout, self._deadline)


class _PinnedHTTPS(http.client.HTTPSConnection):
    def __init__(self, target: Target, timeout: float, deadline: float) -> None:
        super().__init__(target.host, target.port, timeout=timeout, context=ssl.create_default_context())
        self._addresses = target.addresses
        self._deadline = deadline

    def connect(self) -> None:
        sock = _connect(self._addresses, self.port, self.timeout, self._deadline)
        self.sock = sock  # the watchdog can cut a handshake that trickles, too
        # The certificate is checked for the URL's host name, not for the address connected to.
        self.sock = self._context.wrap_socket(sock, server_hostname=self.host)  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    signature: str


def post(
    target: Target, body: bytes, headers: dict[str, str], deadline: float, max_bytes: int, signature_header: str
) -> Reply:
    """POST and read the reply, all before `deadline` (time.monotonic()); ExchangeFailed otherwise."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ExchangeFailed("deadline passed before connecting")
    connection_class = _PinnedHTTPS if target.scheme == "https" else _PinnedHTTP
    connection = connection_class(target, min(remaining, settings.GOSSIP_CONNECT_TIMEOUT), deadline)
    expired = threading.Event()

    def cut() -> None:  # from the watchdog thread: a blocked recv returns at once
        expired.set()
        sock = connection.sock
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    watchdog = threading.Timer(remaining, cut)
    watchdog.daemon = True
    watchdog.start()
    try:
        return _exchange(connection, target, body, headers, deadline, max_bytes, signature_header)
    except (OSError, http.client.HTTPException, ssl.SSLError) as exc:
        if expired.is_set() or time.monotonic() >= deadline:
            raise ExchangeFailed(f"deadline of {settings.GOSSIP_EXCHANGE_DEADLINE:g} s passed") from None
        raise ExchangeFailed(f"connection: {type(exc).__name__}") from None
    finally:
        watchdog.cancel()
        connection.close()


def _exchange(
    connection: http.client.HTTPConnection,
    target: Target,
    body: bytes,
    headers: dict[str, str],
    deadline: float,
    max_bytes: int,
    signature_header: str,
) -> Reply:
    connection.request("POST", target.path or "/", body=body, headers=headers)
    _tighten(connection, deadline)
    response = connection.getresponse()
    if response.status != 200:
        body = b""
        if response.status == 409:
            _tighten(connection, deadline)
            body = response.read(CONFLICT_BODY_MAX)
        raise ExchangeFailed(f"HTTP {response.status} {_phrase(response.status)}".strip(), response.status, body)
    declared = response.getheader("Content-Length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise ExchangeFailed(f"reply of {declared} bytes is over GOSSIP_MAX_BODY_BYTES ({max_bytes})")
    signature = (response.getheader(signature_header) or "")[:256]
    chunks: list[bytes] = []
    size = 0
    while True:
        _tighten(connection, deadline)
        chunk = response.read1(_READ_CHUNK)
        if not chunk:
            break
        size += len(chunk)
        if size > max_bytes:
            raise ExchangeFailed(f"reply is over GOSSIP_MAX_BODY_BYTES ({max_bytes})")
        chunks.append(chunk)
        if time.monotonic() >= deadline:
            raise ExchangeFailed(f"deadline of {settings.GOSSIP_EXCHANGE_DEADLINE:g} s passed")
    return Reply(response.status, b"".join(chunks), signature)


def _phrase(status: int) -> str:
    """Our own words for a status: the peer's reason phrase is never kept."""
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def _tighten(connection: http.client.HTTPConnection, deadline: float) -> None:
    """No single socket wait may outlast the deadline (the watchdog is the backstop)."""
    remaining = deadline - time.monotonic()
    if remaining <= 0:
        raise ExchangeFailed(f"deadline of {settings.GOSSIP_EXCHANGE_DEADLINE:g} s passed")
    if connection.sock is not None:
        connection.sock.settimeout(remaining)
