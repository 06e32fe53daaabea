from __future__ import annotations

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:registers_register_changelist")


def test_the_register_changelist_loads_for_staff(admin_client: Client) -> None:
    # given
    register = make_register(name="visible-in-admin")

    # when
    response = admin_client.get(CHANGELIST)

    # then
    assert response.status_code == 200
    assert "visible-in-admin" in response.content.decode()
    assert register.id[:8] in response.content.decode()


def test_the_register_changelist_sends_a_non_staff_user_to_the_login_page(client: Client) -> None:
    # given
    client.force_login(User.objects.create_user("not-staff", password="a-long-password-1"))

    # when
    response = client.get(CHANGELIST)

    # then
    assert response.status_code == 302
    assert reverse("admin:login") in response["Location"]


def test_the_register_change_form_loads_for_staff(admin_client: Client) -> None:
    # given
    register = make_register()

    # when
    response = admin_client.get(reverse("admin:registers_register_change", args=[register.id]))

    # then
    assert response.status_code == 200
    assert register.id in response.content.decode()


def test_the_changelist_search_finds_a_register_by_id(admin_client: Client) -> None:
    # given
    wanted = make_register(name="wanted-one")
    make_register(name="other-one")

    # when
    response = admin_client.get(CHANGELIST, {"q": wanted.id})

    # then
    assert "wanted-one" in response.content.decode()
    assert "other-one" not in response.content.decode()


def test_the_advertise_action_advertises_the_selected_registers_and_bumps_updated_at(admin_client: Client) -> None:
    # given
    register = make_register(advertise=False)
    before = register.updated_at

    # when
    response = admin_client.post(CHANGELIST, {"action": "advertise_selected", "_selected_action": [register.id]})

    # then
    assert response.status_code == 302
    register.refresh_from_db()
    assert register.advertise is True
    assert register.updated_at > before


def test_the_stop_advertising_action_unadvertises_the_selected_registers_and_bumps_updated_at(
    admin_client: Client,
) -> None:
    # given
    register = make_register(advertise=True)
    before = register.updated_at

    # when
    admin_client.post(CHANGELIST, {"action": "stop_advertising_selected", "_selected_action": [register.id]})

    # then
    register.refresh_from_db()
    assert register.advertise is False
    assert register.updated_at > before


def test_the_advertise_action_leaves_unselected_registers_alone(admin_client: Client) -> None:
    # given
    selected = make_register(advertise=False)
    unselected = make_register(advertise=False)
    before = unselected.updated_at

    # when
    admin_client.post(CHANGELIST, {"action": "advertise_selected", "_selected_action": [selected.id]})

    # then
    unselected.refresh_from_db()
    assert unselected.advertise is False
    assert unselected.updated_at == before


def test_the_advertise_action_reports_how_many_registers_changed(admin_client: Client) -> None:
    # given
    already_public = make_register(advertise=True)
    private = make_register(advertise=False)

    # when
    response = admin_client.post(
        CHANGELIST,
        {"action": "advertise_selected", "_selected_action": [already_public.id, private.id]},
        follow=True,
    )

    # then
    assert "1 register(s) now advertised." in response.content.decode()
