"""Names of the Register Service's Celery tasks.

Senders (the push-on-change signals and the flushes they re-arm, `manage.py resync --enqueue`,
the beat schedule) address tasks by name, so `registers` never imports `tasks` (which imports
`registers`). Names under `registers.` are routed to the queue that only Register Service workers
consume.
"""

from __future__ import annotations

# The push of every register changed within a coalescing window, in one bulk request.
FLUSH_PUSHES = "registers.flush_pushes"
FULL_SYNC = "registers.full_sync"
# The beat's check for changes that waited in the outbox longer than their flush should take.
CHECK_PUSHES = "registers.check_pushes"
