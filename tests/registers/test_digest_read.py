"""The Register Service's digest of its public set: exact stamps, read by the database on either backend."""

from __future__ import annotations

from datetime import UTC, datetime

import orjson
import pytest

from registers.expressions import EpochMicros
from registers.models import Register
from registers.reads import changed_advertisements, public_advertisements, public_digest
from sorcha_site.bounds import moment_micros
from tests.registers.factories import make_register

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 25, 15, 1, 27, 123456, tzinfo=UTC),
        datetime(2026, 11, 25, 15, 1, 27, tzinfo=UTC),  # no fraction: stored without one on SQLite
        datetime(2000, 1, 1, tzinfo=UTC),
        datetime(2038, 1, 19, 3, 14, 8, 1, tzinfo=UTC),  # past 32-bit seconds
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_epoch_micros_is_exactly_what_the_peer_service_is_sent_for_that_moment(moment: datetime) -> None:
    # given
    register = make_register(advertise=True)
    Register.objects.filter(pk=register.pk).update(updated_at=moment)  # update() skips auto_now

    # when
    micros = Register.objects.filter(pk=register.pk).values_list(EpochMicros("updated_at"), flat=True).get()

    # then
    assert micros == moment_micros(moment)


def test_the_digest_lists_every_public_register_once_with_its_updated_at() -> None:
    # given
    public = [make_register(advertise=True) for _ in range(5)]
    make_register(advertise=False)

    # when
    digest = public_digest()

    # then
    assert sorted(digest) == sorted((register.id, moment_micros(register.updated_at)) for register in public)


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 11, 25, 15, 1, 27, 123456, tzinfo=UTC),
        datetime(2026, 11, 25, 15, 1, 27, tzinfo=UTC),
        datetime(2026, 11, 25, 15, 1, 27, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_the_advertisements_read_for_a_full_sync_are_those_a_push_sends(moment: datetime) -> None:
    # given
    register = make_register(advertise=True, is_full_replica=False, latest_version=7, latest_docket_version=3)
    Register.objects.filter(pk=register.pk).update(updated_at=moment)
    register.refresh_from_db()

    # when: the full sync's read (the stamp written by the database) and a push's (written by Python)
    [planned] = public_advertisements()
    [pushed] = changed_advertisements([register.id], {})

    # then: byte for byte the same item
    assert planned == pushed
    assert orjson.loads(planned.encoded) == {
        "registerId": register.id,
        "isPublic": True,
        "name": register.name,
        "description": register.description,
        "isFullReplica": False,
        "latestVersion": 7,
        "latestDocketVersion": 3,
        "sourceUpdatedAt": moment.isoformat(timespec="microseconds"),
    }
    assert (planned.register_id, planned.name) == (register.id, register.name)
