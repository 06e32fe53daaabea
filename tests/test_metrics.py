"""/metrics in Prometheus format: gauges from the pool, counters shared through Redis."""

from __future__ import annotations

import pytest
from django.conf import settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.test import APIClient

from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from sorcha_site import metrics
from tests.conftest import register_id
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db


def scrape(api: APIClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = api.get("/metrics")
    assert response.status_code == 200
    samples = {}
    for family in text_string_to_metric_families(response.content.decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def test_metrics_need_credentials(peer_store: AdvertisementStore) -> None:
    assert APIClient().get("/metrics").status_code == 401


def test_metrics_count_advertisements_by_kind_and_verification(peer_store: AdvertisementStore, api: APIClient) -> None:
    stamp = now_micros()
    peer_store.apply_bulk(
        [AdvertisementInput(register_id(), True, name="a", source_updated_at=stamp) for _ in range(2)]
    )
    peer_store.replace_remote("peer-a", [AdvertisementInput(register_id(), True, name="r")])

    samples = scrape(api)

    assert samples[("sorcha_advertisements", (("kind", "local"), ("verified", "true")))] == 2
    assert samples[("sorcha_advertisements", (("kind", "remote"), ("verified", "true")))] == 1
    assert samples[("sorcha_store_degraded", ())] == 0
    assert samples[("sorcha_store_journal_length", ())] == 0
    assert samples[("sorcha_store_journal_dropped_total", ())] == 0
    assert samples[("sorcha_full_sync_snapshots_voided_total", ())] == 0


def test_a_voided_snapshot_is_counted(peer_store: AdvertisementStore, api: APIClient) -> None:
    item = AdvertisementInput(register_id(), True, name="ledger", source_updated_at=now_micros())
    peer_store.apply_bulk([item], full_sync=True, snapshot_at=now_micros() + 86_400 * 1_000_000)
    peer_store.apply_bulk([item], full_sync=True, snapshot_at=now_micros())

    assert scrape(api)[("sorcha_full_sync_snapshots_voided_total", ())] == 1


def test_events_recorded_in_any_process_are_exposed(peer_store: AdvertisementStore, api: APIClient) -> None:
    metrics.record_full_sync("periodic", "success", 0.3)
    metrics.record_full_sync("periodic", "success", 0.02)
    metrics.record_push_retry()
    metrics.record_gossip_exchange("ok")

    samples = scrape(api)

    assert samples[("sorcha_full_syncs_total", (("outcome", "success"), ("reason", "periodic")))] == 2
    assert samples[("sorcha_full_sync_duration_seconds_count", ())] == 2
    assert samples[("sorcha_full_sync_duration_seconds_bucket", (("le", "0.05"),))] == 1
    assert samples[("sorcha_full_sync_duration_seconds_sum", ())] == pytest.approx(0.32)
    assert samples[("sorcha_push_retries_total", ())] == 1
    assert samples[("sorcha_gossip_exchanges_total", (("outcome", "ok"),))] == 1


def test_the_public_register_count_is_exposed_beside_the_local_pool(
    peer_store: AdvertisementStore, api: APIClient
) -> None:
    for _ in range(2):
        make_register(advertise=True)
    make_register(advertise=False)

    samples = scrape(api)

    assert samples[("sorcha_public_registers", ())] == 2
    assert samples[("sorcha_reconcile_interval_seconds", ())] == settings.RECONCILE_INTERVAL


def test_the_node_info_names_the_node_and_the_service_for_joins_across_processes(
    peer_store: AdvertisementStore, api: APIClient
) -> None:
    samples = scrape(api)

    assert samples[("sorcha_node_info", (("node_name", settings.NODE_NAME), ("service", "all")))] == 1
