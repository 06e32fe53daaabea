"""WSGI entry point: `gunicorn sorcha_site.wsgi:application`."""

from __future__ import annotations

import os

from sorcha_site import allocator, collector

# Before the pool is read in pages of megabytes: those go back to the system once taken in.
allocator.keep_large_blocks_mapped()

from django.conf import settings  # noqa: E402
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

# What the process holds now lives as long as it does: full collections need not walk it again.
collector.freeze_what_start_made()

if settings.SERVES_PEERS:
    from peers.gossip.rounds import trigger_round

    # Tell our peers we are back (and hear theirs) without waiting for the periodic round.
    trigger_round()
