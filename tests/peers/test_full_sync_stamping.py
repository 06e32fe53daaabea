"""A full sync that carries no `snapshotAt` (the original Sorcha client's shape) is stamped on arrival with
the margin this node's own full syncs take (FULL_SYNC_SNAPSHOT_MARGIN), so snapshots order consistently."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from peers.store import AdvertisementStore
from tests.conftest import register_id

pytestmark = pytest.mark.django_db

BULK = "/api/registers/bulk-advertise"
MARGIN = 20.0


def post_json(api: APIClient, body: Any) -> Any:
    return api.post(BULK, data=orjson.dumps(body), content_type="application/json")


def sorcha_item(rid: str) -> dict[str, Any]:
    return {"registerId": rid, "name": "ledger", "isPublic": True, "latestVersion": 0, "latestDocketVersion": 0}


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


@pytest.fixture(autouse=True)
def margin(settings: Any) -> float:
    settings.FULL_SYNC_SNAPSHOT_MARGIN = MARGIN
    return MARGIN


def test_a_full_sync_without_snapshot_at_is_stamped_its_arrival_less_the_margin(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # when
    before = datetime.now(tz=UTC)
    response = post_json(api, {"advertisements": [sorcha_item(register_id())], "fullSync": True})
    after = datetime.now(tz=UTC)

    # then
    assert response.status_code == 200, response.content
    stamped = datetime.fromisoformat(peer_store.status()["lastFullSync"]["snapshotAt"])
    assert before - timedelta(seconds=MARGIN) <= stamped <= after - timedelta(seconds=MARGIN)


def test_this_nodes_own_full_sync_right_after_one_without_snapshot_at_is_not_refused_as_stale(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given: a full sync of the original client's shape, listing nothing this node holds
    kept = register_id()
    post_json(api, {"advertisements": [sorcha_item(register_id())], "fullSync": True})

    # when: the Register Service's own full sync, its snapshot taken the margin before now
    snapshot_at = datetime.now(tz=UTC) - timedelta(seconds=MARGIN)
    response = post_json(api, {"advertisements": [sorcha_item(kept)], "fullSync": True, "snapshotAt": iso(snapshot_at)})

    # then
    assert response.status_code == 200, response.content
    assert response.json()["added"] == 1
    assert kept in {entry.register_id for entry in peer_store.local_advertisements()}


def test_an_advertisement_changed_within_the_margin_survives_a_full_sync_without_snapshot_at(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given: a push a moment ago, of a register changed a moment ago
    recent = register_id()
    changed_at = datetime.now(tz=UTC) - timedelta(seconds=MARGIN / 4)
    api.post(
        f"/api/registers/{recent}/advertise",
        data=orjson.dumps({"isPublic": True, "name": "fresh", "sourceUpdatedAt": iso(changed_at)}),
        content_type="application/json",
    )

    # when: a full sync without snapshotAt that does not list it (its read may predate the change)
    response = post_json(api, {"advertisements": [sorcha_item(register_id())], "fullSync": True})

    # then
    assert response.status_code == 200
    assert recent in {entry.register_id for entry in peer_store.local_advertisements()}
