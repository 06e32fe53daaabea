"""`manage.py` reports a configuration error in one line with a non-zero exit, never a traceback."""

from __future__ import annotations

import pytest

from tests.settings.helpers import manage


def test_resync_with_a_short_token_says_so_in_one_line() -> None:
    result = manage("resync", SORCHA_SERVICE_TOKEN="short")

    assert result.returncode == 2
    assert result.stderr == "manage.py: configuration error: SORCHA_SERVICE_TOKEN must be at least 16 characters long\n"
    assert result.stdout == ""


def test_resync_without_a_token_when_debug_is_off_says_so_in_one_line() -> None:
    result = manage("resync", SORCHA_SERVICE_TOKEN=None)

    assert result.returncode == 2
    assert result.stderr.count("\n") == 1
    assert "SORCHA_SERVICE_TOKEN is required when DEBUG is off" in result.stderr


@pytest.mark.parametrize(
    "command", [["migrate", "--noinput"], ["createsuperuser", "--noinput"], ["shell", "-c", "print(1)"], ["help"]]
)
def test_any_command_with_a_malformed_variable_says_so_in_one_line(command: list[str]) -> None:
    result = manage(*command, RECONCILE_INTERVAL="every minute")

    assert result.returncode == 2
    assert result.stderr.startswith("manage.py: configuration error: RECONCILE_INTERVAL is malformed")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
