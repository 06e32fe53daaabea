"""A `Transfer-Encoding: chunked` body sent to a real gunicorn reaches the API (and is bounded).

gunicorn de-chunks the body but gives Django no Content-Length; the node's WSGI wrapper
(sorcha_site.middleware.ChunkedBodies) reads it, within SORCHA_MAX_BODY_BYTES.
"""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from sorcha_site.middleware import ChunkedBodies
from tests.conftest import register_id
from tests.nodes import Node
from tests.plugin import SESSION_REDIS

LIMIT = 8192


@pytest.fixture(scope="module")
def peer_node() -> Iterator[Node]:
    node = Node("chunked", SESSION_REDIS, SORCHA_SERVICE="peer", SORCHA_MAX_BODY_BYTES=str(LIMIT))
    node.start_web()
    yield node
    node.stop_all()
    node.drop_database()


def chunks(payload: dict[str, Any], size: int = 100) -> Iterator[bytes]:
    """A generator body: requests sends it with Transfer-Encoding: chunked, no Content-Length."""
    raw = json.dumps(payload).encode()
    for start in range(0, len(raw), size):
        yield raw[start : start + size]


def post_chunked(node: Node, payload: dict[str, Any]) -> requests.Response:
    return node.api(
        "POST", "/api/registers/bulk-advertise", data=chunks(payload), headers={"Content-Type": "application/json"}
    )


def test_a_chunked_json_post_is_read_whole(peer_node: Node) -> None:
    ids = [register_id() for _ in range(3)]
    payload = {"advertisements": [{"registerId": ident, "isPublic": True, "name": "chunked"} for ident in ids]}

    response = post_chunked(peer_node, payload)

    assert response.status_code == 200, response.text
    assert response.json()["added"] == 3
    assert set(ids) <= peer_node.available_ids(local=True)


def test_a_chunked_body_over_the_limit_gets_413(peer_node: Node) -> None:
    payload = {"advertisements": [{"registerId": register_id(), "isPublic": True, "name": "x" * 30}] * 100}

    response = post_chunked(peer_node, payload)

    assert response.status_code == 413, response.text
    assert str(LIMIT) in response.json()["detail"]
    assert peer_node.healthy()


def test_a_server_that_does_not_de_chunk_gets_411_not_an_empty_body() -> None:
    """wsgiref and runserver pass the raw chunks on and set no `wsgi.input_terminated`."""
    called: list[dict[str, Any]] = []
    statuses: list[str] = []
    environ = {
        "REQUEST_METHOD": "POST",
        "HTTP_TRANSFER_ENCODING": "chunked",
        "wsgi.input": io.BytesIO(b"5\r\nhello\r\n0\r\n\r\n"),
    }

    body = ChunkedBodies(lambda env, start: called.append(env) or [])(
        environ, lambda status, headers: statuses.append(status)
    )

    assert statuses == ["411 Length Required"]
    assert called == []
    assert b"Content-Length" in b"".join(body)
