"""Names of the Register Service's Celery tasks.

Senders (the push-on-change signals, `manage.py resync --enqueue`, the beat schedule) address
tasks by name, so `registers` never imports `tasks` (which imports `registers`). Names under
`registers.` are routed to the queue that only Register Service workers consume.
"""

from __future__ import annotations

PUSH_REGISTER = "registers.push_register"
FULL_SYNC = "registers.full_sync"
