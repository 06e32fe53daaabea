"""WSGI entry point: `gunicorn sorcha_site.wsgi:application`."""

from __future__ import annotations

import gc
import os

from sorcha_site.memory import drop_free_lists, keep_large_blocks_mapped, reuse_mid_size_blocks

# Start-up allocates what lives as long as the process (modules, the mirror): a collection in the
# middle of it walks all of that and frees nothing (~300 collections, ~0.1 s of a start).
gc.disable()
# The pool is read in pages of megabytes while the process imports: each page must go back to the
# system once taken in, not stay in the heap among the modules (~10 MiB a process at 100,000).
keep_large_blocks_mapped()

from django.conf import settings  # noqa: E402 - after the collector is paused
from django.core.wsgi import get_wsgi_application  # noqa: E402

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sorcha_site.settings")

if settings.SERVES_PEERS:
    # Redis starts reading the persisted pool now, on its own core, while this process sets Django up.
    from peers.store import read_at_start

    read_at_start()

django_application = get_wsgi_application()

from sorcha_site.middleware import ChunkedBodies  # noqa: E402 - after Django is set up

# Chunked request bodies are read (bounded) and given a Content-Length before Django sees them.
application = ChunkedBodies(django_application)

if settings.SERVES_PEERS:
    # Load the persisted pool now, so the first request is already served from it (FR-002, SC-002).
    from peers.store import get_store

    get_store()

# Loaded: the blocks of a few megabytes that requests allocate and free are reused from the heap.
reuse_mid_size_blocks()

# Everything loaded so far lives as long as the process: keep the cyclic collector from walking it
# again on every collection (hot paths allocate heavily; see docs/performance.md). The free
# lists go now, before anything else is allocated among what the start-up rendering freed.
gc.freeze()
drop_free_lists()
gc.enable()

if settings.SERVES_PEERS:
    from peers.gossip.rounds import trigger_round

    # Tell our peers we are back (and hear theirs) without waiting for the periodic round.
    trigger_round()
