"""Changes to registers shared by the API and the admin.

Every change goes through `Register.save()` (never `QuerySet.update()`), so whatever
hooks into saves — the push of the change to the Peer Service — sees each one.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from django.db import transaction

from registers.models import Register

logger = logging.getLogger(__name__)


def set_advertise(registers: Iterable[Register], advertise: bool) -> int:
    """Set the advertise flag on each register that differs; return how many changed."""
    changed = 0
    with transaction.atomic():
        for register in registers:
            if register.advertise == advertise:
                continue
            register.advertise = advertise
            register.save(update_fields=["advertise", "updated_at"])
            changed += 1
            logger.info("register_advertise_changed register_id=%s advertise=%s", register.id, advertise)
    return changed
