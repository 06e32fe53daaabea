"""Push on change: every change that concerns a register's advertisement is written to the outbox.

The row (`registers.pending_pushes.record`) is written in the change's own transaction, so a change
saved is a push owed; after commit, `request_flush` schedules the flush that carries the changes of
one `PUSH_COALESCE_WINDOW` together (`registers.coalescing`).

Whatever path changes a register — API, admin form, admin actions, delete selected — goes
through `save()` or `delete()`, so these receivers see it. `QuerySet.update()` bypasses them;
the periodic full sync repairs what such a path changed.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from django.db import transaction
from django.db.models.signals import post_delete, post_save, pre_save
from django.utils import timezone

from registers import pending_pushes
from registers.advertising import ADVERTISED_FIELDS
from registers.enqueue import request_flush
from registers.models import Register

# The flag first, then what a Peer Service shows about a public register.
STATE_FIELDS = ("advertise", *ADVERTISED_FIELDS)
_BEFORE = "_advertisement_state_before_save"

AdvertisementState = tuple[Any, ...]


def concerns_advertisement(before: AdvertisementState | None, after: AdvertisementState) -> bool:
    """Created public, the flag flipped, or an advertised field changed while public."""
    advertise = after[0]
    if before is None:
        return bool(advertise)
    return before[0] != advertise or (bool(advertise) and before != after)


def remember_state_before_save(sender: type[Register], instance: Register, raw: bool, **kwargs: Any) -> None:
    if raw:  # loading fixtures: not a change made on this node
        return
    before = Register.objects.filter(pk=instance.pk).values_list(*STATE_FIELDS).first()
    setattr(instance, _BEFORE, before)


def push_after_save(
    sender: type[Register],
    instance: Register,
    created: bool,
    raw: bool,
    update_fields: frozenset[str] | None,
    **kwargs: Any,
) -> None:
    if raw:
        return
    before: AdvertisementState | None = instance.__dict__.pop(_BEFORE, None)
    if created:
        before = None
    if before is None or update_fields is None:
        after = tuple(getattr(instance, name) for name in STATE_FIELDS)
    else:
        # Only these fields were written; the others keep what the database held.
        after = tuple(
            getattr(instance, name) if name in update_fields else value
            for name, value in zip(STATE_FIELDS, before, strict=True)
        )
    if concerns_advertisement(before, after):
        pending_pushes.record(instance.pk)
        transaction.on_commit(partial(request_flush, instance.pk), robust=True)


def push_after_delete(sender: type[Register], instance: Register, **kwargs: Any) -> None:
    if instance.advertise:
        # The removal carries the deletion time, so an older push still in flight cannot bring it back.
        pending_pushes.record(instance.pk, timezone.now())
        transaction.on_commit(partial(request_flush, instance.pk), robust=True)


def connect() -> None:
    pre_save.connect(remember_state_before_save, sender=Register, dispatch_uid="registers.remember_state")
    post_save.connect(push_after_save, sender=Register, dispatch_uid="registers.push_after_save")
    post_delete.connect(push_after_delete, sender=Register, dispatch_uid="registers.push_after_delete")
