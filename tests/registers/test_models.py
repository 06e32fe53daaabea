from __future__ import annotations

import re

import pytest
from django.core.exceptions import ValidationError

from registers.models import VERSION_MAX, Register, new_register_id
from tests.registers.factories import make_register


def test_a_new_register_id_is_32_lowercase_hex_characters() -> None:
    assert re.fullmatch(r"[0-9a-f]{32}", new_register_id())


@pytest.mark.parametrize(
    "register_id",
    ["A" * 32, "a" * 31, "a" * 33, "g" * 32, "01234567-89ab-cdef-0123-456789abcdef"],
)
def test_field_validation_rejects_an_id_that_is_not_32_lowercase_hex_characters(register_id: str) -> None:
    # given
    register = Register(id=register_id, name="ledger")

    # when / then
    with pytest.raises(ValidationError) as raised:
        register.clean_fields()
    assert "id" in raised.value.message_dict


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", ""),
        ("name", "n" * 39),
        ("description", "d" * 2049),
        ("latest_version", VERSION_MAX + 1),
        ("latest_docket_version", VERSION_MAX + 1),
    ],
)
def test_field_validation_rejects_a_field_out_of_bounds(field: str, value: object) -> None:
    # given
    register = Register(name="ledger")
    setattr(register, field, value)

    # when / then
    with pytest.raises(ValidationError) as raised:
        register.clean_fields()
    assert field in raised.value.message_dict


@pytest.mark.django_db
def test_updated_at_keeps_its_microseconds_in_the_database() -> None:
    # given
    register = make_register()
    in_memory = register.updated_at

    # when
    register.refresh_from_db()

    # then
    assert register.updated_at == in_memory


@pytest.mark.django_db
def test_saving_a_register_moves_updated_at_forward() -> None:
    # given
    register = make_register()
    before = register.updated_at

    # when
    register.save()

    # then
    assert register.updated_at > before


def test_a_register_reads_as_its_name_and_id() -> None:
    register = Register(id="f" * 32, name="ledger")

    assert str(register) == f"ledger ({'f' * 32})"
