"""A Peer Service that starts when the test says so, on a port fixed in advance.

It serves this project (the same code and store as `live_server`) over real HTTP, so a
process configured with its URL finds nothing listening until `start()`.
"""

from __future__ import annotations

import threading

from django.core.handlers.wsgi import WSGIHandler
from django.core.servers.basehttp import ThreadedWSGIServer
from django.test.testcases import QuietWSGIRequestHandler

from tests.redis_server import free_port


class LatePeerService:
    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server: ThreadedWSGIServer | None = None

    def start(self) -> None:
        server = ThreadedWSGIServer(("127.0.0.1", self.port), QuietWSGIRequestHandler, allow_reuse_address=True)
        server.set_app(WSGIHandler())
        threading.Thread(target=server.serve_forever, name=f"late-peer-{self.port}", daemon=True).start()
        self._server = server

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
