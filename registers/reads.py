"""What the Register Service reads from its database to tell the Peer Service, encoded as it is read.

Each read happens at the moment it runs, so a delayed or repeated call sends the current truth,
never an old one; `sourceUpdatedAt` (the register's `updated_at`) lets the Peer Service order
whatever arrives (ARCHITECTURE §4).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime
from typing import Any

from django.conf import settings
from django.db import connections
from django.utils import timezone

from registers.expressions import EpochMicros, IsoUtc
from registers.models import Register
from registers.wire import ADVERTISED_FIELDS, PlannedAdvertisement, encode_advertisement, encode_removal, moment

# Ids per database query: under SQLite's oldest limit on bound parameters (999).
_IDS_PER_QUERY = 900


def public_advertisements(page_size: int | None = None) -> Iterator[PlannedAdvertisement]:
    """Every public register, encoded, read page by page in primary-key order.

    Each page is one short query (no cursor, and on SQLite no read lock, is held open while the
    Peer Service answers a request), its rows fetched as plain tuples with `sourceUpdatedAt`
    already written as text by the database: no per-row conversion before the encoding.
    """
    page_size = page_size or settings.SORCHA_BULK_MAX_ITEMS
    public = Register.objects.filter(advertise=True).order_by("pk")
    columns = ("id", "name", "description", "is_full_replica", "latest_version", "latest_docket_version")
    last_id = ""
    while True:
        page = public.filter(pk__gt=last_id).values_list(*columns, IsoUtc("updated_at"))[:page_size]
        sql, params = page.query.sql_with_params()
        with connections[page.db].cursor() as cursor:
            cursor.execute(sql, params)
            rows = cursor.fetchall()
            planned = [
                PlannedAdvertisement(
                    register_id,
                    name,
                    encode_advertisement(
                        register_id, name, description, is_full_replica, latest_version, latest_docket, updated_at
                    ),
                )
                for register_id, name, description, is_full_replica, latest_version, latest_docket, updated_at in rows
            ]
        yield from planned
        if len(rows) < page_size:
            return
        last_id = rows[-1][0]


def public_digest() -> list[tuple[str, int]]:
    """`(registerId, sourceUpdatedAt in microseconds)` of every public register, in no particular order.

    Two columns of one short query, converted by the database and fetched as plain tuples (no
    per-row conversion): the digest of 100,000 registers reads in about a tenth of the time
    their advertisements take to read and encode.
    """
    queryset = Register.objects.filter(advertise=True).values_list("id", EpochMicros("updated_at"))
    sql, params = queryset.query.sql_with_params()
    with connections[queryset.db].cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def needed_advertisements(needed: list[str], listed: int) -> Iterator[PlannedAdvertisement]:
    """The current advertisements of the registers a digest said the Peer Service needs, in full.

    Few: read by id. Many (a Peer Service that lost its store): one pass over the public set is cheaper.
    A register made private or deleted since the digest is left out (its own push removes it).
    """
    wanted = set(needed)
    if len(wanted) * 4 > listed:
        yield from (planned for planned in public_advertisements() if planned.register_id in wanted)
        return
    ids = sorted(wanted)
    for start in range(0, len(ids), _IDS_PER_QUERY):
        page = Register.objects.filter(pk__in=ids[start : start + _IDS_PER_QUERY], advertise=True).order_by("pk")
        rows = page.values_list("id", *ADVERTISED_FIELDS, "updated_at")
        for register_id, name, description, is_full_replica, latest, latest_docket, updated_at in rows:
            encoded = encode_advertisement(
                register_id, name, description, is_full_replica, latest, latest_docket, moment(updated_at)
            )
            yield PlannedAdvertisement(register_id, name, encoded)


def changed_advertisements(
    register_ids: Iterable[str], deleted_at: Mapping[str, datetime]
) -> list[PlannedAdvertisement]:
    """The current state of each register, read now, encoded as bulk items.

    Public → its advertisement; private → a removal stamped with its `updated_at`; gone → a
    removal stamped with its deletion time (or now, if that was not recorded), which leaves a
    tombstone so no older push brings it back.
    """
    ids = sorted(register_ids)
    rows: dict[str, tuple[Any, ...]] = {}
    for start in range(0, len(ids), _IDS_PER_QUERY):
        page = Register.objects.filter(pk__in=ids[start : start + _IDS_PER_QUERY])
        rows.update((row[0], row[1:]) for row in page.values_list("id", "advertise", *ADVERTISED_FIELDS, "updated_at"))
    now = timezone.now()
    planned = []
    for register_id in ids:
        row = rows.get(register_id)
        if row is None:
            removal = encode_removal(register_id, moment(deleted_at.get(register_id, now)))
            planned.append(PlannedAdvertisement(register_id, "", removal))
        elif not row[0]:
            planned.append(PlannedAdvertisement(register_id, "", encode_removal(register_id, moment(row[-1]))))
        else:
            _, name, description, is_full_replica, latest, latest_docket, updated_at = row
            encoded = encode_advertisement(
                register_id, name, description, is_full_replica, latest, latest_docket, moment(updated_at)
            )
            planned.append(PlannedAdvertisement(register_id, name, encoded))
    return planned
