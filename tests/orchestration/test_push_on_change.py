"""Every path that changes a register's advertisement queues exactly one push, after commit; others none.

The pushes are observed as they are published to the real broker (the test Redis).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from registers.models import Register
from tests.registers.factories import make_register, register_body

pytestmark = pytest.mark.django_db(transaction=True)

Pushes = Callable[[], list[dict[str, Any]]]
CHANGELIST = reverse("admin:registers_register_changelist")


def pushed_ids(published_pushes: Pushes) -> list[str]:
    return [kwargs["register_id"] for kwargs in published_pushes()]


def admin_form(register: Register | None = None, **changes: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "name": register.name if register else "from-the-admin",
        "description": register.description if register else "",
        "advertise": register.advertise if register else False,
        "is_full_replica": register.is_full_replica if register else True,
        "latest_version": register.latest_version if register else 0,
        "latest_docket_version": register.latest_docket_version if register else 0,
        **changes,
    }
    # An unchecked checkbox is absent from a submitted form.
    return {name: ("on" if value is True else value) for name, value in fields.items() if value is not False}


# ------------------------------------------------------------------------------------------- API
def test_creating_a_public_register_through_the_api_queues_one_push(api: APIClient, published_pushes: Pushes) -> None:
    # when
    response = api.post("/api/registers/", register_body(advertise=True), format="json")

    # then
    assert response.status_code == 201
    assert pushed_ids(published_pushes) == [response.json()["id"]]


def test_creating_a_private_register_through_the_api_queues_no_push(api: APIClient, published_pushes: Pushes) -> None:
    # when
    response = api.post("/api/registers/", register_body(advertise=False), format="json")

    # then
    assert response.status_code == 201
    assert pushed_ids(published_pushes) == []


def test_replacing_a_public_register_with_a_new_name_queues_one_push(api: APIClient, published_pushes: Pushes) -> None:
    # given
    register = make_register(advertise=True)
    before = len(published_pushes())

    # when
    response = api.put(f"/api/registers/{register.id}/", register_body(name="renamed", advertise=True), format="json")

    # then
    assert response.status_code == 200
    assert pushed_ids(published_pushes)[before:] == [register.id]


def test_turning_advertise_off_through_the_api_queues_one_push(api: APIClient, published_pushes: Pushes) -> None:
    # given
    register = make_register(advertise=True)
    before = len(published_pushes())

    # when
    response = api.patch(f"/api/registers/{register.id}/", {"advertise": False}, format="json")

    # then
    assert response.status_code == 200
    assert pushed_ids(published_pushes)[before:] == [register.id]


def test_a_new_version_of_a_public_register_queues_one_push(api: APIClient, published_pushes: Pushes) -> None:
    # given
    register = make_register(advertise=True)
    before = len(published_pushes())

    # when
    api.patch(f"/api/registers/{register.id}/", {"latestVersion": 42}, format="json")

    # then
    assert pushed_ids(published_pushes)[before:] == [register.id]


def test_renaming_a_private_register_queues_no_push(api: APIClient, published_pushes: Pushes) -> None:
    # given
    register = make_register(advertise=False)

    # when
    response = api.patch(f"/api/registers/{register.id}/", {"name": "still-private"}, format="json")

    # then
    assert response.status_code == 200
    assert pushed_ids(published_pushes) == []


def test_saving_a_public_register_unchanged_queues_no_push(api: APIClient, published_pushes: Pushes) -> None:
    # given
    register = make_register(advertise=True, name="same")
    before = len(published_pushes())

    # when
    response = api.patch(f"/api/registers/{register.id}/", {"name": "same", "advertise": True}, format="json")

    # then
    assert response.status_code == 200
    assert pushed_ids(published_pushes)[before:] == []


def test_deleting_a_public_register_through_the_api_queues_a_push_stamped_with_the_deletion_time(
    api: APIClient, published_pushes: Pushes
) -> None:
    # given
    register = make_register(advertise=True)
    before = len(published_pushes())

    # when
    response = api.delete(f"/api/registers/{register.id}/")

    # then
    assert response.status_code == 204
    [push] = published_pushes()[before:]
    assert push["register_id"] == register.id
    assert datetime.fromisoformat(push["deleted_at"]) >= register.updated_at


def test_deleting_a_private_register_queues_no_push(api: APIClient, published_pushes: Pushes) -> None:
    # given
    register = make_register(advertise=False)

    # when
    api.delete(f"/api/registers/{register.id}/")

    # then
    assert pushed_ids(published_pushes) == []


# ----------------------------------------------------------------------------------------- admin
def test_adding_a_public_register_in_the_admin_form_queues_one_push(
    admin_client: Client, published_pushes: Pushes
) -> None:
    # when
    response = admin_client.post(reverse("admin:registers_register_add"), admin_form(advertise=True))

    # then
    assert response.status_code == 302
    assert pushed_ids(published_pushes) == [Register.objects.get(name="from-the-admin").id]


def test_changing_the_description_of_a_public_register_in_the_admin_form_queues_one_push(
    admin_client: Client, published_pushes: Pushes
) -> None:
    # given
    register = make_register(advertise=True)
    before = len(published_pushes())

    # when
    response = admin_client.post(
        reverse("admin:registers_register_change", args=[register.id]), admin_form(register, description="new")
    )

    # then
    assert response.status_code == 302
    assert pushed_ids(published_pushes)[before:] == [register.id]


def test_the_advertise_action_queues_one_push_per_register_it_changes(
    admin_client: Client, published_pushes: Pushes
) -> None:
    # given
    private = [make_register(advertise=False) for _ in range(2)]
    already_public = make_register(advertise=True)
    before = len(published_pushes())

    # when
    admin_client.post(
        CHANGELIST,
        {"action": "advertise_selected", "_selected_action": [r.id for r in [*private, already_public]]},
    )

    # then
    assert sorted(pushed_ids(published_pushes)[before:]) == sorted(r.id for r in private)


def test_the_stop_advertising_action_queues_one_push_per_register(
    admin_client: Client, published_pushes: Pushes
) -> None:
    # given
    public = [make_register(advertise=True) for _ in range(2)]
    before = len(published_pushes())

    # when
    admin_client.post(CHANGELIST, {"action": "stop_advertising_selected", "_selected_action": [r.id for r in public]})

    # then
    assert sorted(pushed_ids(published_pushes)[before:]) == sorted(r.id for r in public)


def test_deleting_selected_registers_in_the_admin_queues_a_push_for_each_public_one(
    admin_client: Client, published_pushes: Pushes
) -> None:
    # given
    public = make_register(advertise=True)
    private = make_register(advertise=False)
    before = len(published_pushes())

    # when
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [public.id, private.id], "post": "yes"}
    )

    # then
    assert response.status_code == 302
    assert not Register.objects.exists()
    [push] = published_pushes()[before:]
    assert push["register_id"] == public.id
    assert push["deleted_at"] is not None


# ------------------------------------------------------------------------------------- ORM paths
def test_a_push_is_queued_only_after_the_transaction_commits(published_pushes: Pushes) -> None:
    # when
    with transaction.atomic():
        register = make_register(advertise=True)
        queued_inside = list(published_pushes())

    # then
    assert queued_inside == []
    assert pushed_ids(published_pushes) == [register.id]


def test_a_rolled_back_change_queues_no_push(published_pushes: Pushes) -> None:
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        make_register(advertise=True)
        raise RuntimeError("roll back")

    # then
    assert published_pushes() == []
