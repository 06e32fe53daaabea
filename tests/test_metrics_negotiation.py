"""/metrics speaks the formats scrapers ask for: Prometheus text (0.0.4) and OpenMetrics."""

from __future__ import annotations

import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics
from prometheus_client.parser import text_string_to_metric_families as parse_text
from rest_framework.test import APIClient

from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from tests.conftest import register_id

pytestmark = pytest.mark.django_db

PROMETHEUS_SCRAPER = (
    "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
    "text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
)


@pytest.fixture
def one_advertisement(peer_store: AdvertisementStore) -> None:
    peer_store.apply_bulk([AdvertisementInput(register_id(), True, name="a", source_updated_at=now_micros())])


def local_verified(families: object) -> float:
    for family in families:  # type: ignore[attr-defined]
        for sample in family.samples:
            if sample.name == "sorcha_advertisements" and sample.labels == {"kind": "local", "verified": "true"}:
                return float(sample.value)
    raise AssertionError("sorcha_advertisements{kind=local,verified=true} is missing")


@pytest.mark.parametrize(
    "accept", [None, "", "text/plain", "text/plain;version=0.0.4", "*/*", "text/*", "text/html, */*;q=0.1"]
)
def test_the_prometheus_text_format_is_served_to_whoever_takes_it(
    accept: str | None, api: APIClient, one_advertisement: None
) -> None:
    headers = {} if accept is None else {"Accept": accept}

    response = api.get("/metrics", headers=headers)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert local_verified(parse_text(response.content.decode())) == 1


@pytest.mark.parametrize(
    "accept", ["application/openmetrics-text", "application/openmetrics-text; version=1.0.0", PROMETHEUS_SCRAPER]
)
def test_openmetrics_is_served_to_who_asks_for_it(accept: str, api: APIClient, one_advertisement: None) -> None:
    response = api.get("/metrics", headers={"Accept": accept})

    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/openmetrics-text; version=1.0.0; charset=utf-8")
    body = response.content.decode()
    assert body.endswith("# EOF\n")
    assert local_verified(parse_openmetrics(body)) == 1


@pytest.mark.parametrize("accept", ["application/json", "text/html", "text/plain;q=0, application/xml"])
def test_a_format_it_cannot_serve_gets_406_saying_what_it_serves(accept: str, api: APIClient) -> None:
    response = api.get("/metrics", headers={"Accept": accept})

    assert response.status_code == 406
    assert response["Content-Type"] == "application/json"
    assert "application/openmetrics-text" in response.json()["detail"]


def test_credentials_are_still_checked_whatever_the_accept_header() -> None:
    assert APIClient().get("/metrics", headers={"Accept": "text/plain"}).status_code == 401
