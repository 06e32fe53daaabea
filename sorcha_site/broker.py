"""The broker connection of the node's Celery app: kombu's, with Redis channels that fail cleanly once released.

Why: when a worker loses its Redis broker while it holds an unacknowledged message (a task with a
countdown or ETA, such as a coalesced push flush), Celery's consumer first `collect()`s the broken
connection and then `close()`s it. `collect()` releases the transport (kombu sets `transport.client`
to None) even though closing the default channel failed on the dead socket, so `close()` closes that
channel a second time, and closing restores its unacknowledged messages through a new connection pool
built from `transport.client`. Unguarded, that is an AttributeError, which Celery's cleanup (it ignores
connection errors only) turns into "Unrecoverable error" and an exit.

Here a channel whose transport was released raises redis's ConnectionError instead: the error any broker
call gets with the broker down, which kombu's and Celery's cleanup handle, so the worker reconnects. The
messages stay in the broker's unacked set (Redis ack emulation) and are delivered again once they are
older than `visibility_timeout`; a push flush lost that way is caught sooner by the beat's `check_pushes`.

Kombu's own extension points carry it: the app's AMQP class (`Celery(amqp=...)`) names the Connection
class, whose `get_transport_cls()` hands out subclasses of kombu's Redis and Sentinel transports with the
guarded channel. The broker URL's scheme still picks the transport (redis, rediss with its TLS default,
sentinel with its failover alternates); every other transport is kombu's, unchanged.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import redis
from celery.app.amqp import AMQP
from kombu import Connection
from kombu.transport import redis as kombu_redis
from kombu.transport.base import Transport

logger = logging.getLogger(__name__)


class RedisChannel(kombu_redis.Channel):
    """Kombu's Redis channel, refusing to build a new broker client once its transport is released."""

    @contextmanager
    def conn_or_acquire(self, client: Any | None = None) -> Iterator[Any]:
        transport = self.connection  # kombu's name for the channel's transport
        if client is None and (transport is None or transport.client is None):
            logger.warning(
                "event=broker_channel_released visibility_timeout=%s (the broker connection is gone: "
                "unacknowledged messages stay in the broker's unacked set until then)",
                self.visibility_timeout,
            )
            raise redis.exceptions.ConnectionError("this channel's broker connection was already released")
        with super().conn_or_acquire(client) as acquired:
            yield acquired


class SentinelChannel(RedisChannel, kombu_redis.SentinelChannel):
    """Kombu's Sentinel channel with the same guard."""


class RedisTransport(kombu_redis.Transport):
    Channel = RedisChannel


class SentinelTransport(kombu_redis.SentinelTransport):
    Channel = SentinelChannel


GUARDED_TRANSPORTS: dict[type[Transport], type[Transport]] = {
    kombu_redis.Transport: RedisTransport,
    kombu_redis.SentinelTransport: SentinelTransport,
}


class BrokerConnection(Connection):
    """A kombu Connection whose Redis and Sentinel transports use the guarded channels."""

    def get_transport_cls(self) -> type[Transport]:
        transport = super().get_transport_cls()
        return GUARDED_TRANSPORTS.get(transport, transport)


class BrokerAMQP(AMQP):
    """Celery's AMQP helper, opening every broker connection (worker, beat, publishers) as a BrokerConnection."""

    Connection = BrokerConnection
    BrokerConnection = BrokerConnection
