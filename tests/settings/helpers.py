"""Run `manage.py` in a fresh interpreter with a given environment, as an operator would."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# A complete, valid production-like environment; each test changes one thing in it.
VALID = {
    "SORCHA_ENV_FILE": os.devnull,
    "DJANGO_SETTINGS_MODULE": "sorcha_site.settings",
    "DEBUG": "false",
    "SECRET_KEY": "settings-test-secret-key-9f2c4a7e1b3d5f60c8e2a4b6d8f0a1c3e5",
    "SORCHA_SERVICE_TOKEN": "settings-test-service-token-0123456789",
    "ALLOWED_HOSTS": "node.example.org",
    # Nothing listens on port 1: the settings never connect anywhere, and nothing here may reach a real Redis.
    "REDIS_URL": "redis://127.0.0.1:1/0",
    "CELERY_BROKER_URL": "redis://127.0.0.1:1/1",
}


def environment(**changes: str | None) -> dict[str, str]:
    """VALID plus `changes` (None removes a variable), without the test session's own settings."""
    inherited = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG", "TMPDIR")}
    env = {**inherited, **VALID}
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def manage(*args: str, timeout: float = 60, **changes: str | None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "manage.py"), *args],
        cwd=ROOT,
        env=environment(**changes),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
