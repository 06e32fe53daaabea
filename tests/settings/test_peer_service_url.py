"""PEER_SERVICE_URL follows HOST and PORT (where `make run` serves) unless the operator set it.

Each case reads the settings in a fresh interpreter, as a node process would, with the variables
in the environment or in the .env file the settings read (SORCHA_ENV_FILE).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.settings.helpers import manage

PRINT_URLS = "from django.conf import settings as s; print(s.PEER_SERVICE_URL, s.PEER_PUBLIC_URL)"


def urls(**changes: str | None) -> list[str]:
    result = manage("shell", "--verbosity", "0", "-c", PRINT_URLS, **changes)
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.parametrize(
    ("host", "port", "expected"),
    [
        (None, None, "http://127.0.0.1:8000"),
        ("127.0.0.1", "8011", "http://127.0.0.1:8011"),
        ("localhost", "8012", "http://localhost:8012"),
        # Listening on every address: the node reaches itself over loopback.
        ("0.0.0.0", "8013", "http://127.0.0.1:8013"),  # noqa: S104 - binds nothing
        ("::", "8014", "http://[::1]:8014"),
        ("::1", "8015", "http://[::1]:8015"),
    ],
)
def test_unset_it_follows_host_and_port(host: str | None, port: str | None, expected: str) -> None:
    assert urls(HOST=host, PORT=port, PEER_SERVICE_URL=None) == [expected, expected]


def test_set_in_the_environment_it_wins_over_host_and_port() -> None:
    assert urls(HOST="127.0.0.1", PORT="8011", PEER_SERVICE_URL="http://peer.internal:9000")[0] == (
        "http://peer.internal:9000"
    )


def test_set_in_the_env_file_it_wins_over_host_and_port(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("PEER_SERVICE_URL=http://peer.internal:9000\n")

    assert urls(SORCHA_ENV_FILE=str(env_file), PORT="8011", PEER_SERVICE_URL=None)[0] == "http://peer.internal:9000"


def test_host_and_port_in_the_env_file_are_followed_too(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("HOST=localhost\nPORT=8016\n")

    assert urls(SORCHA_ENV_FILE=str(env_file), HOST=None, PORT=None, PEER_SERVICE_URL=None)[0] == (
        "http://localhost:8016"
    )


@pytest.mark.parametrize("port", ["http", "0", "65536", "-1"])
def test_a_malformed_port_stops_the_process_with_one_line_naming_it(port: str) -> None:
    result = manage("check", PORT=port, PEER_SERVICE_URL=None)

    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "PORT" in lines[0] and "Traceback" not in result.stderr


def test_a_malformed_port_is_not_read_when_peer_service_url_is_set() -> None:
    """PORT is also set by platforms and process managers for their own purposes; an explicit URL needs none."""
    assert urls(PORT="http", PEER_SERVICE_URL="http://peer.internal:9000")[0] == "http://peer.internal:9000"
