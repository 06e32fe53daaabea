"""Shared fixtures: private Redis servers, advertisement stores, authenticated API clients."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from rest_framework.test import APIClient

from peers import store as store_module
from peers.store import AdvertisementStore
from tests.plugin import SERVICE_TOKEN, SESSION_REDIS
from tests.redis_server import RedisServer
from tests.tcp_proxy import TcpProxy


@pytest.fixture
def session_redis() -> RedisServer:
    return SESSION_REDIS


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and restart."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def redis_proxy(private_redis: RedisServer) -> Iterator[TcpProxy]:
    """A TCP proxy in front of this test's Redis: cutting it partitions only the stores built on its URL."""
    proxy = TcpProxy(private_redis.port)
    proxy.start()
    yield proxy
    proxy.cut()


@pytest.fixture
def prefix() -> str:
    return f"t{uuid.uuid4().hex[:12]}"


@pytest.fixture
def make_store(prefix: str) -> Iterator[object]:
    """Build stores over the session Redis (or another) sharing one key prefix, as processes would."""
    created: list[AdvertisementStore] = []

    def build(
        ttl: float = 300.0, redis: RedisServer = SESSION_REDIS, url: str | None = None, **options: object
    ) -> AdvertisementStore:
        options.setdefault("breaker_cooldown", 0.2)
        options.setdefault("socket_timeout", 0.5)
        store = AdvertisementStore(url or redis.url, prefix, ttl, **options)  # type: ignore[arg-type]
        created.append(store)
        return store

    yield build
    for store in created:
        store.close()


def point_store_at(settings: object, url: str) -> None:
    """Point the process's store at another Redis: REDIS_URL and the django-redis alias it connects through."""
    point_aliases_at(settings, url, "advertisements")


def point_coordination_at(settings: object, url: str) -> None:
    """Point the Register Service's coordination keys (pending pushes, leases, claims, lineage) at another Redis."""
    point_aliases_at(settings, url, "coordination")


def point_aliases_at(settings: object, url: str, *aliases: str) -> None:
    settings.REDIS_URL = url  # type: ignore[attr-defined]
    caches = dict(settings.CACHES)  # type: ignore[attr-defined]
    for alias in aliases:
        caches[alias] = {**caches[alias], "LOCATION": url}
    settings.CACHES = caches  # type: ignore[attr-defined]


@pytest.fixture
def peer_store(settings: object, prefix: str) -> Iterator[AdvertisementStore]:
    """The process-wide store the Peer API uses, on a fresh prefix for this test."""
    settings.REDIS_KEY_PREFIX = prefix  # type: ignore[attr-defined]
    store_module.reset_store()
    yield store_module.get_store()
    store_module.reset_store()


@pytest.fixture
def api() -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {SERVICE_TOKEN}")
    return client


def register_id() -> str:
    return uuid.uuid4().hex
