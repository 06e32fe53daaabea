"""The WSGI module's start-up, in a fresh interpreter as gunicorn's worker runs it."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from sorcha_site.memory import drop_free_lists, keep_large_blocks_mapped, reuse_mid_size_blocks
from tests.nodes import base_environment, migrated_database
from tests.plugin import SESSION_REDIS
from tests.settings.helpers import ROOT, environment


def test_the_collector_paused_for_start_up_is_running_again_once_the_application_is_loaded() -> None:
    code = "import gc, sorcha_site.wsgi; print(gc.isenabled(), gc.get_freeze_count() > 0)"
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment(SORCHA_SERVICE="register"),  # no store: nothing here reaches a Redis
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["True", "True"]


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the thresholds are glibc's")
def test_a_web_process_maps_large_blocks_while_it_loads_and_reuses_mid_size_ones_once_it_serves() -> None:
    # mallopt says whether it took each setting (the thresholds themselves cannot be read back).
    assert keep_large_blocks_mapped() is True
    assert reuse_mid_size_blocks() is True  # (and this test process serves as before)

    code = (
        "import sorcha_site.memory as memory\n"
        "calls = []\n"
        "import gc\n"
        "for name in ('keep_large_blocks_mapped', 'reuse_mid_size_blocks', 'drop_free_lists'):\n"
        "    original = getattr(memory, name)\n"
        "    def record(name=name, original=original):\n"
        "        calls.append((name, original(), gc.get_freeze_count() > 0))\n"
        "        return True\n"
        "    setattr(memory, name, record)\n"
        "import sorcha_site.wsgi\n"
        "import django.apps\n"
        "print(calls, django.apps.apps.ready)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment(SORCHA_SERVICE="register"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    # the pool's pages of megabytes are mapped (freed, they go back to the system) while the process
    # starts; once it is loaded, the blocks of a few megabytes that requests make come from the heap,
    # and the free lists are emptied once what was loaded is frozen (the collection walks nothing)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == (
        "[('keep_large_blocks_mapped', True, False), ('reuse_mid_size_blocks', True, False), "
        "('drop_free_lists', None, True)] True"
    )


def free_dicts(capfd: pytest.CaptureFixture[str]) -> int:
    """How many dicts the interpreter keeps on its free list (CPython reports it on the C stderr)."""
    capfd.readouterr()
    sys._debugmallocstats()
    report = capfd.readouterr().err
    counts = [int(line.split()[0]) for line in report.splitlines() if "free PyDictObjects" in line]
    assert counts, f"CPython reported no dict free list:\n{report[:2000]}"
    return counts[0]


def test_dropping_the_free_lists_empties_them(capfd: pytest.CaptureFixture[str]) -> None:
    kept = [{"row": n} for n in range(10)]
    scattered = [{"row": n} for n in range(200)]
    del scattered  # the last 80 freed wait on the free list (CPython keeps at most 80), wherever they lie
    assert free_dicts(capfd) == 80

    drop_free_lists()

    assert free_dicts(capfd) <= 2  # (what reading the report itself freed since)
    assert kept == [{"row": n} for n in range(10)]


def test_a_peer_service_loads_its_store_then_empties_the_free_lists_then_tells_its_peers_it_is_back(
    tmp_path: Path, prefix: str
) -> None:
    # The gossip round is recorded only if it comes after the free lists were emptied (the recorder
    # takes its place then); the real round, called earlier, would leave no record.
    code = (
        "import gc\n"
        "import sorcha_site.memory as memory\n"
        "calls = []\n"
        "original = memory.drop_free_lists\n"
        "def drop():\n"
        "    import peers.gossip.rounds, peers.store\n"
        "    calls.append(('drop_free_lists', peers.store._store is not None, gc.get_freeze_count() > 0))\n"
        "    peers.gossip.rounds.trigger_round = lambda: calls.append(('trigger_round',))\n"
        "    original()\n"
        "memory.drop_free_lists = drop\n"
        "import sorcha_site.wsgi\n"
        "print(calls)"
    )
    env = base_environment(migrated_database(tmp_path), SESSION_REDIS, prefix)
    env["SORCHA_SERVICE"] = "peer"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[('drop_free_lists', True, True), ('trigger_round',)]"
