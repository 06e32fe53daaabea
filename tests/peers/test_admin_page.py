"""The Peer Network admin page as the server renders it (its behaviour in a browser: tests/browser)."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.urls import reverse

pytestmark = pytest.mark.django_db

PAGE = reverse("admin:peers_peernetwork_changelist")


def test_the_admin_index_links_to_the_page_without_an_add_link(admin_client: Client) -> None:
    # when
    response = admin_client.get(reverse("admin:index"))

    # then
    content = response.content.decode()
    assert f'href="{PAGE}"' in content
    assert "/admin/peers/peernetwork/add/" not in content


def test_the_page_names_the_apis_it_reads_and_its_refresh_interval(admin_client: Client) -> None:
    # when
    response = admin_client.get(PAGE, {"refresh": "1000"})

    # then
    assert response.status_code == 200
    content = response.content.decode()
    assert 'data-refresh-ms="1000"' in content
    assert 'data-url-available="/api/registers/available"' in content
    assert 'data-url-sync-state="/api/registers/sync-state"' in content
    assert 'data-url-resync="/api/registers/resync"' in content
    assert 'data-serves-peers="true"' in content
    assert "csrfmiddlewaretoken" in content


@pytest.mark.parametrize(("asked", "used"), [("100", "500"), ("soon", "5000"), ("", "5000")])
def test_a_refresh_interval_too_short_or_malformed_is_not_taken(admin_client: Client, asked: str, used: str) -> None:
    # when
    response = admin_client.get(PAGE, {"refresh": asked})

    # then
    assert f'data-refresh-ms="{used}"' in response.content.decode()


def test_there_are_no_change_or_delete_pages_to_stumble_on(admin_client: Client) -> None:
    # The model has no table: a change view would fail on its query, so none is routed.
    for path in ("/admin/peers/peernetwork/1/change/", "/admin/peers/peernetwork/add/"):
        assert admin_client.get(path).status_code == 404


def test_a_staff_user_needs_the_view_permission(client: Client) -> None:
    # given
    clerk = User.objects.create_user("clerk", password="a-long-password-1", is_staff=True)
    client.force_login(clerk)
    assert client.get(PAGE).status_code == 403

    # when
    clerk.user_permissions.add(Permission.objects.get(codename="view_peernetwork"))

    # then
    assert client.get(PAGE).status_code == 200


def test_a_user_who_is_not_staff_is_sent_to_the_login_page(client: Client) -> None:
    # given
    client.force_login(User.objects.create_user("visitor", password="a-long-password-1"))

    # when
    response = client.get(PAGE)

    # then
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]
