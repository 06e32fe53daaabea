"""A TCP forwarder in front of a server: cutting it partitions one client from the server.

Used to make one store (one "process") lose Redis while another keeps it, as a network
partition or a broken connection pool would.
"""

from __future__ import annotations

import contextlib
import random
import selectors
import socket
import threading


def port_outside_the_ephemeral_range() -> int:
    """A free port below Linux's ephemeral range (32768-60999).

    While the proxy is cut, its clients keep trying to connect to its port; with the port in the
    ephemeral range, one such attempt can draw that very port as its own source and connect to
    itself (TCP simultaneous open), and the proxy could then not listen there again.
    """
    error: OSError | None = None
    for _ in range(200):
        port = random.randrange(20_000, 32_000)
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the listener will bind it
            try:
                probe.bind(("127.0.0.1", port))
            except OSError as exc:
                error = exc
                continue
            return port
    raise RuntimeError(f"no free port below the ephemeral range (last error: {error!r})")


class TcpProxy:
    def __init__(self, target_port: int, host: str = "127.0.0.1") -> None:
        self.host = host
        self.target_port = target_port
        self.port = port_outside_the_ephemeral_range()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._acceptor: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self) -> None:
        listener = socket.create_server((self.host, self.port), reuse_port=False)
        listener.settimeout(0.2)
        self._listener = listener
        self._stopping.clear()
        self._acceptor = threading.Thread(target=self._accept, args=(listener,), daemon=True)
        self._acceptor.start()

    def cut(self) -> None:
        """Close the listener and every forwarded connection: the client sees the server gone."""
        self._stopping.set()
        if self._listener is not None:
            # shutdown() wakes the thread blocked in accept(): until it returns, the kernel keeps
            # the port listening even after close(), and a new listener could not bind it.
            with contextlib.suppress(OSError):
                self._listener.shutdown(socket.SHUT_RDWR)
            self._listener.close()
            self._listener = None
        if self._acceptor is not None:
            self._acceptor.join(timeout=2)
            self._acceptor = None
        with self._lock:
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while not self._stopping.is_set():
            try:
                client, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                upstream = socket.create_connection((self.host, self.target_port), timeout=2)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._connections += [client, upstream]
            threading.Thread(target=self._pump, args=(client, upstream), daemon=True).start()

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(a, selectors.EVENT_READ, b)
        selector.register(b, selectors.EVENT_READ, a)
        try:
            while not self._stopping.is_set():
                for key, _ in selector.select(timeout=0.2):
                    data = key.fileobj.recv(65536)  # type: ignore[union-attr]
                    if not data:
                        return
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            selector.close()
            for conn in (a, b):
                with contextlib.suppress(OSError):
                    conn.close()
