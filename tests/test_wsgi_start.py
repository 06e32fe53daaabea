"""The WSGI module's start-up, in a fresh interpreter as gunicorn's worker runs it."""

from __future__ import annotations

import subprocess
import sys

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
