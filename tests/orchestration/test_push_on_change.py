"""Every path that changes a register's advertisement marks it pending for a push, after commit; others none.

The changes are observed where they wait (the test Redis) and the flushes as they are published
to the real broker: the first change of a window schedules one flush that carries them all.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from django.db import transaction
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from registers.models import Register
from tests.orchestration.conftest import PendingChanges
from tests.registers.factories import make_register, register_body

pytestmark = pytest.mark.django_db(transaction=True)

CHANGELIST = reverse("admin:registers_register_changelist")


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
def test_creating_a_public_register_through_the_api_marks_it_pending_for_one_flush(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # when
    response = api.post("/api/registers/", register_body(advertise=True), format="json")

    # then
    assert response.status_code == 201
    assert pending_changes.ids() == {response.json()["id"]}
    assert len(pending_changes.flushes()) == 1


def test_creating_a_private_register_through_the_api_marks_nothing_pending(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # when
    response = api.post("/api/registers/", register_body(advertise=False), format="json")

    # then
    assert response.status_code == 201
    assert pending_changes.ids() == set()
    assert pending_changes.flushes() == []


def test_replacing_a_public_register_with_a_new_name_marks_it_pending_for_one_flush(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # given
    register = make_register(advertise=True)
    pending_changes.reset()

    # when
    response = api.put(f"/api/registers/{register.id}/", register_body(name="renamed", advertise=True), format="json")

    # then
    assert response.status_code == 200
    assert pending_changes.ids() == {register.id}
    assert len(pending_changes.flushes()) == 1


def test_turning_advertise_off_through_the_api_marks_it_pending_for_one_flush(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # given
    register = make_register(advertise=True)
    pending_changes.reset()

    # when
    response = api.patch(f"/api/registers/{register.id}/", {"advertise": False}, format="json")

    # then
    assert response.status_code == 200
    assert pending_changes.ids() == {register.id}
    assert len(pending_changes.flushes()) == 1


def test_a_new_version_of_a_public_register_marks_it_pending_for_one_flush(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # given
    register = make_register(advertise=True)
    pending_changes.reset()

    # when
    api.patch(f"/api/registers/{register.id}/", {"latestVersion": 42}, format="json")

    # then
    assert pending_changes.ids() == {register.id}
    assert len(pending_changes.flushes()) == 1


def test_renaming_a_private_register_marks_nothing_pending(api: APIClient, pending_changes: PendingChanges) -> None:
    # given
    register = make_register(advertise=False)

    # when
    response = api.patch(f"/api/registers/{register.id}/", {"name": "still-private"}, format="json")

    # then
    assert response.status_code == 200
    assert pending_changes.ids() == set()
    assert pending_changes.flushes() == []


def test_saving_a_public_register_unchanged_marks_nothing_pending(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # given
    register = make_register(advertise=True, name="same")
    pending_changes.reset()

    # when
    response = api.patch(f"/api/registers/{register.id}/", {"name": "same", "advertise": True}, format="json")

    # then
    assert response.status_code == 200
    assert pending_changes.ids() == set()
    assert pending_changes.flushes() == []


def test_deleting_a_public_register_through_the_api_records_its_deletion_time_for_the_push(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # given
    register = make_register(advertise=True)
    pending_changes.reset()

    # when
    response = api.delete(f"/api/registers/{register.id}/")

    # then
    assert response.status_code == 204
    assert pending_changes.deleted_at().keys() == {register.id}
    assert pending_changes.deleted_at()[register.id] >= register.updated_at
    assert len(pending_changes.flushes()) == 1


def test_deleting_a_private_register_marks_nothing_pending(api: APIClient, pending_changes: PendingChanges) -> None:
    # given
    register = make_register(advertise=False)

    # when
    api.delete(f"/api/registers/{register.id}/")

    # then
    assert pending_changes.ids() == set()
    assert pending_changes.flushes() == []


# ----------------------------------------------------------------------------------------- admin
def test_adding_a_public_register_in_the_admin_form_marks_it_pending_for_one_flush(
    admin_client: Client, pending_changes: PendingChanges
) -> None:
    # when
    response = admin_client.post(reverse("admin:registers_register_add"), admin_form(advertise=True))

    # then
    assert response.status_code == 302
    assert pending_changes.ids() == {Register.objects.get(name="from-the-admin").id}
    assert len(pending_changes.flushes()) == 1


def test_changing_the_description_of_a_public_register_in_the_admin_form_marks_it_pending_for_one_flush(
    admin_client: Client, pending_changes: PendingChanges
) -> None:
    # given
    register = make_register(advertise=True)
    pending_changes.reset()

    # when
    response = admin_client.post(
        reverse("admin:registers_register_change", args=[register.id]), admin_form(register, description="new")
    )

    # then
    assert response.status_code == 302
    assert pending_changes.ids() == {register.id}
    assert len(pending_changes.flushes()) == 1


def test_the_advertise_action_marks_each_register_it_changes_pending_for_one_flush_it_changes(
    admin_client: Client, pending_changes: PendingChanges
) -> None:
    # given
    private = [make_register(advertise=False) for _ in range(2)]
    already_public = make_register(advertise=True)
    pending_changes.reset()

    # when
    admin_client.post(
        CHANGELIST,
        {"action": "advertise_selected", "_selected_action": [r.id for r in [*private, already_public]]},
    )

    # then
    assert pending_changes.ids() == {r.id for r in private}
    assert len(pending_changes.flushes()) == 1  # the changes of one action travel together


def test_the_stop_advertising_action_marks_each_register_it_changes_pending_for_one_flush(
    admin_client: Client, pending_changes: PendingChanges
) -> None:
    # given
    public = [make_register(advertise=True) for _ in range(2)]
    pending_changes.reset()

    # when
    admin_client.post(CHANGELIST, {"action": "stop_advertising_selected", "_selected_action": [r.id for r in public]})

    # then
    assert pending_changes.ids() == {r.id for r in public}
    assert len(pending_changes.flushes()) == 1


def test_deleting_selected_registers_in_the_admin_marks_each_public_one_deleted_for_one_flush(
    admin_client: Client, pending_changes: PendingChanges
) -> None:
    # given
    public = make_register(advertise=True)
    private = make_register(advertise=False)
    pending_changes.reset()

    # when
    response = admin_client.post(
        CHANGELIST, {"action": "delete_selected", "_selected_action": [public.id, private.id], "post": "yes"}
    )

    # then
    assert response.status_code == 302
    assert not Register.objects.exists()
    assert pending_changes.deleted_at().keys() == {public.id}
    assert len(pending_changes.flushes()) == 1


# ------------------------------------------------------------------------------------- ORM paths
def test_a_change_is_noted_in_its_own_transaction_and_its_flush_scheduled_after_commit(
    pending_changes: PendingChanges,
) -> None:
    # when
    with transaction.atomic():
        register = make_register(advertise=True)
        pending_inside, flushes_inside = pending_changes.ids(), list(pending_changes.flushes())

    # then: the outbox row is part of the change (it commits or rolls back with it); the flush waits for it
    assert (pending_inside, flushes_inside) == ({register.id}, [])
    assert pending_changes.ids() == {register.id}
    assert len(pending_changes.flushes()) == 1


def test_a_rolled_back_change_marks_nothing_pending(pending_changes: PendingChanges) -> None:
    # when
    with pytest.raises(RuntimeError), transaction.atomic():
        make_register(advertise=True)
        raise RuntimeError("roll back")

    # then
    assert pending_changes.ids() == set()
    assert pending_changes.flushes() == []


# ------------------------------------------------------------------------------------ coalescing
def test_changes_made_within_one_window_schedule_a_single_flush(
    api: APIClient, pending_changes: PendingChanges
) -> None:
    # when: five changes, faster than any worker would take them (none runs here)
    created = [api.post("/api/registers/", register_body(advertise=True), format="json").json()["id"] for _ in range(4)]
    api.patch(f"/api/registers/{created[0]}/", {"advertise": False}, format="json")

    # then
    assert pending_changes.ids() == set(created)
    assert len(pending_changes.flushes()) == 1


def test_the_flush_is_scheduled_one_coalescing_window_after_the_first_change(
    api: APIClient, published_task_headers: list[dict[str, Any]], settings: Any
) -> None:
    # given
    settings.PUSH_COALESCE_WINDOW = 30.0

    # when
    api.post("/api/registers/", register_body(advertise=True), format="json")

    # then: its ETA lies about one window ahead (within this test's own run time)
    [headers] = published_task_headers
    eta = datetime.fromisoformat(headers["eta"])
    assert timedelta(seconds=25) < eta - timezone.now() <= timedelta(seconds=30)


def test_a_queryset_update_marks_nothing_pending(pending_changes: PendingChanges) -> None:
    # given
    register = make_register(advertise=True)
    pending_changes.reset()

    # when: the documented bypass; the periodic full sync repairs what it changed
    Register.objects.filter(pk=register.pk).update(advertise=False)

    # then
    assert pending_changes.ids() == set()
    assert pending_changes.flushes() == []


def test_a_save_whose_push_cannot_be_noted_is_not_saved(pending_changes: PendingChanges) -> None:
    # given: the outbox refuses the row (a receiver on its save raises, as a failing write would)
    from django.db.models.signals import post_save

    from registers.pending_pushes import PendingPush

    def refuse(**_: Any) -> None:
        raise RuntimeError("the outbox cannot take the row")

    post_save.connect(refuse, sender=PendingPush, weak=False)
    try:
        # when
        with pytest.raises(RuntimeError):
            make_register(advertise=True)
    finally:
        post_save.disconnect(refuse, sender=PendingPush)

    # then: the register and the push it owes commit together, or neither does
    assert Register.objects.count() == 0
    assert pending_changes.flushes() == []
