"""Prometheus metrics at /metrics.

Gauges are read at scrape time from the shared state (the advertisement store, the
database). Counters and the full-sync histogram are kept in Redis, because the events
happen in several processes — web workers, Celery workers — while one of them is
scraped; prometheus-client renders the exposition format.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import redis
from django.conf import settings
from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema
from prometheus_client.core import CollectorRegistry, CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.exposition import choose_encoder
from prometheus_client.registry import Collector
from rest_framework.request import Request
from rest_framework.views import APIView

from sorcha_site import redis_connections
from sorcha_site.api import error_response
from sorcha_site.schema import error

logger = logging.getLogger(__name__)

FULL_SYNC_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_COUNTERS_TTL = 30 * 86_400


def _redis() -> redis.Redis:
    return redis_connections.connection(redis_connections.METRICS)


def _key() -> str:
    return f"{settings.REDIS_KEY_PREFIX}:metrics"


def increment(field: str, amount: float = 1) -> None:
    """Count an event for every process of this node; a Redis outage loses the count, never the request."""
    try:
        pipe = _redis().pipeline(transaction=False)
        pipe.hincrbyfloat(_key(), field, amount)
        pipe.expire(_key(), _COUNTERS_TTL)
        pipe.execute()
    except redis.RedisError as exc:
        logger.debug("event=metric_dropped field=%s error=%r", field, exc)


def record_full_sync(reason: str, outcome: str, seconds: float) -> None:
    increment(f"full_sync|{reason}|{outcome}")
    bucket = next((str(bound) for bound in FULL_SYNC_BUCKETS if seconds <= bound), "+Inf")
    increment(f"full_sync_bucket|{bucket}")
    increment("full_sync_seconds_sum", seconds)


def record_push_retry() -> None:
    increment("push_retries")


def record_gossip_exchange(outcome: str) -> None:
    increment(f"gossip|{outcome}")


def record_gossip_refusal(reason: str) -> None:
    """A gossip message refused (received or a reply), by reason: rate_limited_address, peer_cap, ..."""
    increment(f"gossip_refused|{reason}")


def record_set_refusal(reason: str) -> None:
    """A relayed signed set refused, by reason: bad_signature, replayed, expired, banned, origin_rate, ..."""
    increment(f"set_refused|{reason}")


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


class NodeCollector(Collector):
    def collect(self) -> Iterator[Any]:
        # Which node and service this process is: rules and dashboards join on it (deploy/monitoring/), as the
        # Register Service's and the Peer Service's metrics may come from different processes of one node.
        info = GaugeMetricFamily("sorcha_node_info", "This process's node and service", labels=["node_name", "service"])
        info.add_metric([settings.NODE_NAME, settings.SORCHA_SERVICE], 1)
        yield info
        yield from self._store_metrics()
        yield from self._event_metrics()
        yield from self._database_metrics()

    def _store_metrics(self) -> Iterator[Any]:
        if not settings.SERVES_PEERS:
            return
        from peers.store import get_store

        store = get_store()
        advertisements = GaugeMetricFamily(
            "sorcha_advertisements", "Advertisements in the pool", labels=["kind", "verified"]
        )
        counts = {("local", True): 0, ("local", False): 0, ("remote", True): 0, ("remote", False): 0}
        for entry in store.local_advertisements():
            counts[("local", entry.verified)] += 1
        for entry in store.remote_advertisements():
            counts[("remote", entry.verified)] += 1
        for (kind, verified), value in counts.items():
            advertisements.add_metric([kind, str(verified).lower()], value)
        yield advertisements
        status = store.status()
        yield GaugeMetricFamily(
            "sorcha_remote_advertisements_held",
            "Remote advertisements held (bounded by GOSSIP_MAX_REMOTE_ADS)",
            value=status["remoteAdvertisements"],
        )
        yield GaugeMetricFamily("sorcha_store_degraded", "1 while the store serves from memory", value=store.degraded)
        yield GaugeMetricFamily(
            "sorcha_store_journal_length", "Writes waiting for Redis to come back", value=status["journalLength"]
        )
        yield CounterMetricFamily(
            "sorcha_store_journal_dropped",
            "Journaled writes this process dropped at the journal's bounds (STORE_JOURNAL_MAX_OPS, _MAX_AGE)",
            value=status["journalDropped"],
        )
        yield CounterMetricFamily(
            "sorcha_full_sync_snapshots_voided",
            "Stored full-sync snapshots voided: ahead of this clock, or blocking for over one RECONCILE_INTERVAL",
            value=status["voidedSnapshots"],
        )

    def _event_metrics(self) -> Iterator[Any]:
        try:
            raw = _redis().hgetall(_key())
        except redis.RedisError as exc:
            logger.warning("event=metrics_counters_unavailable error=%r", exc)
            return
        values = {_text(field): float(value) for field, value in raw.items()}
        outcomes = CounterMetricFamily(
            "sorcha_full_syncs", "Full syncs by reason and outcome", labels=["reason", "outcome"]
        )
        gossip = CounterMetricFamily("sorcha_gossip_exchanges", "Gossip exchanges by outcome", labels=["outcome"])
        refusals = CounterMetricFamily(
            "sorcha_gossip_refusals", "Gossip messages refused, by reason", labels=["reason"]
        )
        sets = CounterMetricFamily(
            "sorcha_gossip_sets_refused", "Signed advertisement sets refused, by reason", labels=["reason"]
        )
        for field, value in values.items():
            kind, *labels = field.split("|")
            if kind == "full_sync" and len(labels) == 2:
                outcomes.add_metric(labels, value)
            elif kind == "gossip" and len(labels) == 1:
                gossip.add_metric(labels, value)
            elif kind == "gossip_refused" and len(labels) == 1:
                refusals.add_metric(labels, value)
            elif kind == "set_refused" and len(labels) == 1:
                sets.add_metric(labels, value)
        yield outcomes
        yield sets
        yield gossip
        yield refusals
        yield CounterMetricFamily(
            "sorcha_push_retries", "Retried pushes to the Peer Service", value=values.get("push_retries", 0)
        )
        cumulative, buckets = 0.0, []
        for bound in (*[str(b) for b in FULL_SYNC_BUCKETS], "+Inf"):
            cumulative += values.get(f"full_sync_bucket|{bound}", 0)
            buckets.append((bound, cumulative))
        yield HistogramMetricFamily(
            "sorcha_full_sync_duration_seconds",
            "Duration of full syncs",
            buckets=buckets,
            sum_value=values.get("full_sync_seconds_sum", 0),
        )

    def _database_metrics(self) -> Iterator[Any]:
        if settings.SERVES_PEERS:
            # The model, not peers.gossip: gossip records its counters here (no import circle).
            from peers.models import Peer

            peers = GaugeMetricFamily("sorcha_peers", "Known peers by status", labels=["status"])
            totals = {"healthy": 0, "backing_off": 0, "banned": 0, "never": 0, "pending": 0}
            for peer in Peer.objects.all():
                totals[peer.status] += 1
            for status, value in totals.items():
                peers.add_metric([status], value)
            yield peers
        if settings.SERVES_REGISTERS:
            try:
                from registers.models import AdvertisementSyncState, Register
            except ImportError:
                return
            state = AdvertisementSyncState.objects.filter(pk=1).first()
            last = state.last_success_at.timestamp() if state is not None and state.last_success_at else 0
            yield GaugeMetricFamily(
                "sorcha_last_successful_full_sync_timestamp_seconds", "When the last full sync succeeded", value=last
            )
            yield GaugeMetricFamily(
                "sorcha_reconcile_interval_seconds",
                "RECONCILE_INTERVAL: how often a full sync runs",
                value=settings.RECONCILE_INTERVAL,
            )
            # One indexed count: what the local pool should hold once pushes have landed.
            yield GaugeMetricFamily(
                "sorcha_public_registers",
                "Registers with advertise=true",
                value=Register.objects.filter(advertise=True).count(),
            )


_registry = CollectorRegistry(auto_describe=False)
_registry.register(NodeCollector())


class MetricsView(APIView):
    """Protected like the rest of the API, unless METRICS_PUBLIC lets a scraper in without a token."""

    def get_permissions(self) -> list[Any]:
        if settings.METRICS_PUBLIC:
            return []
        return list(super().get_permissions())

    # What a scraper may ask for: the Prometheus text format, OpenMetrics, or anything.
    served_media_ranges = frozenset({"text/plain", "application/openmetrics-text", "text/*", "*/*"})

    def perform_content_negotiation(self, request: Request, force: bool = False) -> tuple[Any, str]:
        # The exposition format is negotiated in `get` (prometheus_client's choose_encoder), not by DRF's
        # renderers, which know only JSON and would answer 406 to a scraper's `Accept: text/plain`.
        renderer = self.get_renderers()[0]
        return renderer, str(renderer.media_type)

    @extend_schema(
        responses={
            (200, "text/plain"): OpenApiTypes.STR,
            (200, "application/openmetrics-text"): OpenApiTypes.STR,
            406: error(406, "An Accept header that asks for neither format (nor `text/*` or `*/*`)."),
        },
        summary="Prometheus metrics of this node",
        description=(
            "The Prometheus text exposition format, or OpenMetrics when the Accept header asks for "
            "application/openmetrics-text. Needs the API's credentials unless METRICS_PUBLIC is on."
        ),
    )
    def get(self, request: Request) -> HttpResponse:
        accept = request.META.get("HTTP_ACCEPT", "")
        if not self.serves(accept):
            return error_response(
                f"Accept: {accept!r} asks for none of {', '.join(sorted(self.served_media_ranges))}.", status=406
            )
        encoder, content_type = choose_encoder(accept)
        return HttpResponse(encoder(_registry), content_type=content_type)

    @classmethod
    def serves(cls, accept: str) -> bool:
        """Whether one of the Accept header's media ranges (q > 0) is one we serve; no header accepts anything."""
        if not accept.strip():
            return True
        for media_range in accept.split(","):
            media_type, *parameters = (part.strip() for part in media_range.split(";"))
            quality = next((value for key, _, value in (p.partition("=") for p in parameters) if key == "q"), "1")
            try:
                wanted = float(quality) > 0
            except ValueError:
                wanted = True
            if wanted and media_type.lower() in cls.served_media_ranges:
                return True
        return False
