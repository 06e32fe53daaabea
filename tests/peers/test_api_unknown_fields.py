"""Both the Peer API and gossip refuse a body with a field the endpoint does not know: 400 naming it,
nothing applied. The original Sorcha client's bodies (camelCase, `name`/`description` possibly null,
no `snapshotAt`, no `sourceUpdatedAt`) stay accepted."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from rest_framework.test import APIClient

from peers.models import Peer
from peers.store import AdvertisementStore
from tests.conftest import register_id
from tests.peers.fake_peers import EXCHANGE, SIGNATURE_HEADER, FakeNode, remote_ad

pytestmark = pytest.mark.django_db

BULK = "/api/registers/bulk-advertise/"
RECONCILE = "/api/registers/reconcile/"


def post_json(client: APIClient, url: str, body: Any) -> Any:
    return client.post(url, data=orjson.dumps(body), content_type="application/json")


def assert_400_naming(response: Any, field: str) -> None:
    assert response.status_code == 400, response.content
    detail = response.json()["detail"]
    assert detail.startswith(f"{field}: unknown field"), detail


def sorcha_item(rid: str) -> dict[str, Any]:
    """An item as the original Sorcha client (System.Text.Json, web defaults) serialises AdvertisementItem."""
    return {
        "registerId": rid,
        "name": None,
        "description": None,
        "isPublic": True,
        "latestVersion": 0,
        "latestDocketVersion": 0,
    }


def test_the_original_sorcha_clients_bulk_body_is_accepted(api: APIClient, peer_store: AdvertisementStore) -> None:
    # given
    rid = register_id()

    # when
    response = post_json(api, BULK, {"advertisements": [sorcha_item(rid)], "fullSync": True})

    # then
    assert response.status_code == 200, response.content
    assert [entry.register_id for entry in peer_store.local_advertisements()] == [rid]


def test_the_original_sorcha_clients_advertise_body_is_accepted(api: APIClient, peer_store: AdvertisementStore) -> None:
    # when
    response = post_json(api, f"/api/registers/{register_id()}/advertise", {"isPublic": False})

    # then
    assert response.status_code == 200, response.content


def test_an_unknown_field_on_advertise_is_400_naming_it_and_changes_nothing(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # when
    response = post_json(api, f"/api/registers/{register_id()}/advertise", {"isPublic": True, "nmae": "typo"})

    # then
    assert_400_naming(response, "nmae")
    assert peer_store.local_advertisements() == []


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ({"fulSync": True}, "fulSync"),
        ({"snapshot": "2026-01-01T00:00:00Z"}, "snapshot"),
    ],
)
def test_an_unknown_field_in_a_bulk_body_is_400_naming_it_and_applies_nothing(
    api: APIClient, peer_store: AdvertisementStore, extra: dict[str, Any], field: str
) -> None:
    # when
    response = post_json(api, BULK, {"advertisements": [sorcha_item(register_id())], **extra})

    # then
    assert_400_naming(response, field)
    assert peer_store.local_advertisements() == []


def test_an_unknown_field_in_a_bulk_item_is_400_naming_the_item_and_applies_nothing(
    api: APIClient, peer_store: AdvertisementStore
) -> None:
    # given
    items = [sorcha_item(register_id()), {**sorcha_item(register_id()), "isPubilc": False}]

    # when
    response = post_json(api, BULK, {"advertisements": items})

    # then
    assert_400_naming(response, "advertisements[1].isPubilc")
    assert peer_store.local_advertisements() == []


def test_an_unknown_field_in_a_digest_page_is_400_naming_it(api: APIClient, peer_store: AdvertisementStore) -> None:
    # when
    body = {"snapshotAt": "2026-01-01T00:00:00Z", "registerIds": [], "sourceUpdatedAt": [], "finale": True}
    response = post_json(api, RECONCILE, body)

    # then
    assert_400_naming(response, "finale")
    assert peer_store.status()["lastFullSync"] is None


@pytest.mark.parametrize("action", ["ban", "unban", "approve", "forget"])
def test_a_body_with_fields_on_a_peer_action_is_400_naming_them_and_changes_nothing(
    api: APIClient, peer_store: AdvertisementStore, action: str
) -> None:
    # given
    peer = Peer.objects.create(name="p", claimed_url="http://127.0.0.1:9")
    before = Peer.objects.values().get(pk=peer.pk)

    # when
    response = post_json(api, f"/api/peers/{peer.pk}/{action}", {"reason": "spam"})

    # then
    assert_400_naming(response, "reason")
    assert Peer.objects.values().get(pk=peer.pk) == before


@pytest.mark.parametrize("body", [None, {}])
def test_a_peer_action_without_a_body_or_with_an_empty_object_is_accepted(
    api: APIClient, peer_store: AdvertisementStore, body: Any
) -> None:
    # given
    peer = Peer.objects.create(name="p", claimed_url="http://127.0.0.1:9")

    # when
    if body is None:
        response = api.post(f"/api/peers/{peer.pk}/ban")
    else:
        response = post_json(api, f"/api/peers/{peer.pk}/ban", body)

    # then
    assert response.status_code == 200, response.content
    assert Peer.objects.get(pk=peer.pk).banned


def test_a_body_with_fields_on_a_gossip_round_is_400(api: APIClient, peer_store: AdvertisementStore) -> None:
    # when
    response = post_json(api, "/api/peers/round", {"force": True})

    # then
    assert_400_naming(response, "force")


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"extra": 1}, "extra"),
        ({"peers": [{"url": "http://127.0.0.1:10", "name": "x"}]}, "peers[0].name"),
    ],
)
def test_a_gossip_message_with_an_unknown_field_is_400_naming_it(
    peer_store: AdvertisementStore, change: dict[str, Any], field: str
) -> None:
    # given
    node = FakeNode()
    body = orjson.dumps({**node.message([remote_ad()]), **change})

    # when
    response = APIClient().post(
        EXCHANGE, data=body, content_type="application/json", headers={SIGNATURE_HEADER: node.sign(body)}
    )

    # then
    assert_400_naming(response, field)
    assert peer_store.available() == []


def test_a_gossip_advertisement_with_an_unknown_field_is_400_naming_it(peer_store: AdvertisementStore) -> None:
    # given
    node = FakeNode()
    body = orjson.dumps(node.message([{**remote_ad(), "isPubic": True}]))

    # when
    response = APIClient().post(
        EXCHANGE, data=body, content_type="application/json", headers={SIGNATURE_HEADER: node.sign(body)}
    )

    # then
    assert_400_naming(response, "advertisements[0].isPubic")
    assert peer_store.available() == []
