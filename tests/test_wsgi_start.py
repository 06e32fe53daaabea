"""The WSGI module's start-up, in a fresh interpreter as gunicorn's worker runs it."""

from __future__ import annotations

import platform
import subprocess
import sys

import pytest

from sorcha_site.memory import keep_large_blocks_mapped
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


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="the threshold is glibc's")
def test_a_web_process_keeps_large_blocks_mapped_so_freed_pages_of_the_pool_go_back_to_the_system() -> None:
    # mallopt says whether it took the setting (the threshold itself cannot be read back).
    assert keep_large_blocks_mapped() is True

    code = (
        "import sorcha_site.memory as memory\n"
        "calls = []\n"
        "original = memory.keep_large_blocks_mapped\n"
        "memory.keep_large_blocks_mapped = lambda: calls.append(original()) or calls[-1]\n"
        "import sorcha_site.wsgi\n"
        "print(calls)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env=environment(SORCHA_SERVICE="register"),
        capture_output=True,
        text=True,
        timeout=60,
    )

    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[True]"]
