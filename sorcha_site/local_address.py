"""The URL at which a node serving on HOST:PORT reaches itself (no Django: scripts import it too)."""

from __future__ import annotations

# Listening on every address: the node reaches itself over loopback.
WILDCARDS = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1", "[::]": "::1"}  # noqa: S104 - binds nothing


def parse_port(value: str) -> int:
    """A TCP port number, or ValueError saying what is wrong with it."""
    port = int(value.strip())
    if not 0 < port < 65536:
        raise ValueError(f"a TCP port is 1 to 65535, got {port}")
    return port


def local_url(host: str, port: int) -> str:
    """`http://host:port` for a server bound to host (a wildcard address becomes loopback)."""
    host = host.strip()
    host = WILDCARDS.get(host, host).strip("[]")
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
