from __future__ import annotations

import re
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.test import Client
from django.urls import reverse

from registers.models import Register
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


def staff_with(*codenames: str) -> User:
    from django.contrib.auth.models import Permission

    user = User.objects.create_user(f"staff-{'-'.join(codenames)}", password="a-long-password-1", is_staff=True)
    user.user_permissions.set(Permission.objects.filter(content_type__app_label="registers", codename__in=codenames))
    return user


@pytest.mark.parametrize(("action", "advertised"), [("advertise_selected", False), ("stop_advertising_selected", True)])
def test_staff_with_only_the_view_permission_cannot_run_an_advertise_action(
    client: Client, action: str, advertised: bool
) -> None:
    # given
    register = make_register(advertise=advertised)
    before = register.updated_at
    client.force_login(staff_with("view_register"))
    assert client.get(CHANGELIST).status_code == 200

    # when
    response = client.post(CHANGELIST, {"action": action, "_selected_action": [register.id]}, follow=True)

    # then
    assert "register(s)" not in response.content.decode()
    register.refresh_from_db()
    assert (register.advertise, register.updated_at) == (advertised, before)


def test_staff_with_only_the_view_permission_are_not_offered_the_advertise_actions(client: Client) -> None:
    # given
    make_register()
    client.force_login(staff_with("view_register"))

    # when
    page = client.get(CHANGELIST).content.decode()

    # then
    assert "advertise_selected" not in page
    assert "stop_advertising_selected" not in page


def test_staff_with_the_change_permission_can_run_the_advertise_action(client: Client) -> None:
    # given
    register = make_register(advertise=False)
    client.force_login(staff_with("view_register", "change_register"))

    # when
    client.post(CHANGELIST, {"action": "advertise_selected", "_selected_action": [register.id]})

    # then
    register.refresh_from_db()
    assert register.advertise is True


def sorted_headers(html: str) -> list[tuple[str, str, str]]:
    """(column class, direction, priority) of each column header the changelist marks as sorted."""
    found = []
    for match in re.finditer(r'<th scope="col" class="([^"]*)">(.*?)</th>', html, re.S):
        classes = match.group(1).split()
        if "sorted" in classes:
            direction = "ascending" if "ascending" in classes else "descending"
            priority = re.search(r'<span class="sortpriority"[^>]*>\s*(\d+)', match.group(2))
            column = next(name for name in classes if name.startswith("column-"))
            found.append((column, direction, priority.group(1) if priority else "1"))
    return found


def test_the_changelist_sort_arrow_says_newest_first_as_the_rows_are(admin_client: Client) -> None:
    # given: two registers, the second created later
    older = make_register(name="older-register")
    newer = make_register(name="newer-register")
    Register.objects.filter(pk=older.pk).update(created_at=newer.created_at - timedelta(hours=1))

    # when
    html = admin_client.get(CHANGELIST).content.decode()

    # then: the rows are newest first, and the one column marked sorted says so (descending on Created)
    assert html.index("newer-register") < html.index("older-register")
    assert sorted_headers(html) == [("column-created_at", "descending", "1")]
