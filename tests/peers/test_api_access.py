"""Who may call the Peer API: credentials, logged-in Django users, and only staff may write (issue 11)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from peers.store import AdvertisementStore
from tests.conftest import register_id
from tests.peers.api_helpers import AVAILABLE, BULK, advertise_url, available_ids, item, post_json

pytestmark = pytest.mark.django_db


# ---------------------------------------------------------------- authentication
@pytest.mark.parametrize("header", [None, "Bearer wrong-token-0123456789", "Basic dXNlcjpwYXNz"])
def test_calls_without_valid_credentials_get_401_and_change_nothing(
    peer_store: AdvertisementStore, header: str | None
) -> None:
    client = APIClient()
    if header:
        client.credentials(HTTP_AUTHORIZATION=header)

    response = post_json(client, BULK, {"advertisements": [item(register_id())]})

    assert response.status_code in (401, 403)
    assert response.status_code == 401
    assert peer_store.available() == []
    assert client.get(AVAILABLE).status_code == 401


def test_a_logged_in_django_user_may_read_available(peer_store: AdvertisementStore) -> None:
    user = User.objects.create_user("operator", password="a-long-password-123")
    client = APIClient()
    client.force_login(user)

    assert client.get(AVAILABLE).status_code == 200


# ---------------------------------------------------------------- who may write (issue 11)
def session_client(**flags: bool) -> APIClient:
    user = User.objects.create_user("someone", password="a-long-password-123", **flags)
    client = APIClient()
    client.force_login(user)
    return client


def test_a_logged_in_user_who_is_not_staff_may_not_write(peer_store: AdvertisementStore) -> None:
    # given
    client = session_client()
    rid = register_id()

    # when
    bulk = post_json(client, BULK, {"advertisements": [item(rid)]})
    advertised = post_json(client, advertise_url(rid), {"isPublic": True})
    deleted = client.delete(advertise_url(rid))

    # then
    assert (bulk.status_code, advertised.status_code, deleted.status_code) == (403, 403, 403)
    assert peer_store.available() == []


def test_a_logged_in_user_who_is_not_staff_may_read(peer_store: AdvertisementStore) -> None:
    # given
    client = session_client()

    # when / then
    assert client.get(AVAILABLE).status_code == 200
    assert client.get("/api/store/status").status_code == 200


def test_a_non_staff_user_may_not_delete_an_advertisement(api: APIClient, peer_store: AdvertisementStore) -> None:
    # given
    rid = register_id()
    post_json(api, advertise_url(rid), {"isPublic": True})

    # when
    response = session_client().delete(advertise_url(rid))

    # then
    assert response.status_code == 403
    assert available_ids(api) == {rid}


def test_a_staff_user_may_write(peer_store: AdvertisementStore) -> None:
    # given
    client = session_client(is_staff=True)
    rid = register_id()

    # when
    response = post_json(client, BULK, {"advertisements": [item(rid)]})

    # then
    assert response.status_code == 200
    assert {row["registerId"] for row in peer_store.available()} == {rid}
