"""The WSGI module's start-up, in a fresh interpreter as gunicorn's worker runs it.

A Peer Service begins reading its persisted pool before Django is set up (Redis reads it on its own
core meanwhile), builds its store from that read before it serves its first request, and then
tells its peers it is back. A Register Service does none of that.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from peers.store import AdvertisementInput, AdvertisementStore, now_micros
from tests.conftest import register_id
from tests.nodes import base_environment, migrated_database
from tests.plugin import SESSION_REDIS
from tests.settings.helpers import ROOT, environment

# Imports the WSGI module with the store's start-up functions and the gossip trigger recorded (the
# real ones run): each call with whether Django was set up by then, the store with what it holds.
# The gossip round is recorded only if it comes after the store was built (the recorder takes its
# place then); the real round, called earlier, would leave no record.
RECORDED_START = (
    "import django.apps, peers.store\n"
    "calls = []\n"
    "begin, build = peers.store.read_at_start, peers.store.get_store\n"
    "def read_at_start():\n"
    "    calls.append(('read_at_start', django.apps.apps.ready))\n"
    "    begin()\n"
    "def get_store():\n"
    "    import peers.gossip.rounds\n"
    "    store = build()\n"
    "    calls.append(('get_store', django.apps.apps.ready, len(store.mirror.local), store.degraded))\n"
    "    peers.gossip.rounds.trigger_round = lambda: calls.append(('trigger_round',))\n"
    "    return store\n"
    "peers.store.read_at_start, peers.store.get_store = read_at_start, get_store\n"
    "import sorcha_site.wsgi\n"
    "print(calls)"
)


def test_a_peer_service_reads_its_pool_before_django_builds_its_store_then_tells_its_peers_it_is_back(
    tmp_path: Path, prefix: str
) -> None:
    # given: a pool of three advertisements persisted under the node's prefix
    seeder = AdvertisementStore(SESSION_REDIS.url, prefix, 300.0, start_watcher=False)
    stamp = now_micros()
    pool = [AdvertisementInput(register_id(), True, name="ledger", source_updated_at=stamp) for _ in range(3)]
    seeder.apply_bulk(pool)
    seeder.close()
    env = base_environment(migrated_database(tmp_path), SESSION_REDIS, prefix)
    env["SORCHA_SERVICE"] = "peer"

    # when: a web process loads the WSGI module
    result = subprocess.run(
        [sys.executable, "-c", RECORDED_START], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    # then: the read began before Django was set up; the store, built once it was, holds the pool before
    # any request; and only then was a gossip round triggered
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[('read_at_start', False), ('get_store', True, 3, False), ('trigger_round',)]"


def test_a_register_service_neither_reads_a_pool_nor_builds_a_store() -> None:
    result = subprocess.run(
        [sys.executable, "-c", RECORDED_START],
        cwd=ROOT,
        env=environment(SORCHA_SERVICE="register"),  # no store: nothing here reaches a Redis
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_a_web_process_freezes_what_it_loaded_and_maps_large_blocks_on_their_own(tmp_path: Path, prefix: str) -> None:
    """The two process-level settings kept (sorcha_site/collector.py, sorcha_site/allocator.py; their
    measurements are in those modules): once loaded, the store's mirror is beyond the collector's reach."""
    seeder = AdvertisementStore(SESSION_REDIS.url, prefix, 300.0, start_watcher=False)
    seeder.apply_bulk([AdvertisementInput(register_id(), True, name="ledger", source_updated_at=now_micros())])
    seeder.close()
    env = base_environment(migrated_database(tmp_path), SESSION_REDIS, prefix)
    env["SORCHA_SERVICE"] = "peer"
    probe = (
        "import gc, sorcha_site.wsgi\n"
        "from peers.store import get_store\n"
        "from sorcha_site import allocator\n"
        "entry = next(iter(get_store().mirror.local.values()))\n"
        "print(gc.get_freeze_count() > 0, gc.is_tracked(entry) and not any(entry is o for o in gc.get_objects()),"
        " allocator.keep_large_blocks_mapped())"
    )

    result = subprocess.run(
        [sys.executable, "-c", probe], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "True True True"
