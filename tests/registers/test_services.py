from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.db.models.signals import post_save

from registers import services
from registers.models import Register
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db


@pytest.fixture
def saved_registers() -> Iterator[list[tuple[str, frozenset[str] | None]]]:
    """Records every Register.save(): the push-on-change hook relies on saves, not bulk updates."""
    saves: list[tuple[str, frozenset[str] | None]] = []

    def record(sender: type[Register], instance: Register, update_fields: frozenset[str] | None, **_: Any) -> None:
        saves.append((instance.id, update_fields))

    post_save.connect(record, sender=Register, weak=False)
    yield saves
    post_save.disconnect(record, sender=Register)


def test_set_advertise_returns_how_many_registers_changed() -> None:
    # given
    make_register(advertise=True)
    make_register(advertise=False)
    make_register(advertise=False)

    # when
    changed = services.set_advertise(Register.objects.all(), advertise=True)

    # then
    assert changed == 2
    assert Register.objects.filter(advertise=False).count() == 0


def test_set_advertise_saves_each_changed_register_with_its_timestamp(
    saved_registers: list[tuple[str, frozenset[str] | None]],
) -> None:
    # given
    first = make_register(advertise=False)
    second = make_register(advertise=False)
    saved_registers.clear()

    # when
    services.set_advertise(Register.objects.all(), advertise=True)

    # then
    assert sorted(saved_registers) == sorted(
        [(first.id, frozenset({"advertise", "updated_at"})), (second.id, frozenset({"advertise", "updated_at"}))]
    )


def test_set_advertise_does_not_save_a_register_already_in_that_state(
    saved_registers: list[tuple[str, frozenset[str] | None]],
) -> None:
    # given
    register = make_register(advertise=True)
    before = register.updated_at
    saved_registers.clear()

    # when
    changed = services.set_advertise([register], advertise=True)

    # then
    assert changed == 0
    assert saved_registers == []
    register.refresh_from_db()
    assert register.updated_at == before
