"""scripts/ensure_redis.py, which `make run` calls: start a private Redis where none answers, or say why not."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from scripts.ensure_redis import answers
from tests.helpers import wait_until
from tests.plugin import SESSION_REDIS
from tests.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


def ensure_redis(tmp_path: Path, env_file: str = os.devnull, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {key: value for key, value in os.environ.items() if key not in ("REDIS_URL", "CELERY_BROKER_URL")}
    env.update({"SORCHA_ENV_FILE": env_file, **variables})
    return subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "ensure_redis.py"), "--var-dir", str(tmp_path / "var")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def free_redis_port() -> Iterator[int]:
    """A port nothing listens on; whatever the script starts there is shut down afterwards."""
    port = free_port()
    yield port
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2) as connection:
        connection.sendall(b"*2\r\n$8\r\nSHUTDOWN\r\n$6\r\nNOSAVE\r\n")
        connection.recv(64)  # the server closes the connection as it exits
    wait_until(lambda: not answers("127.0.0.1", port), timeout=10, message=f"redis-server on {port} did not stop")


def test_nothing_answering_on_loopback_starts_a_private_redis_server_that_answers(
    tmp_path: Path, free_redis_port: int
) -> None:
    port = free_redis_port

    result = ensure_redis(
        tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0", CELERY_BROKER_URL=f"redis://127.0.0.1:{port}/1"
    )

    assert result.returncode == 0, result.stderr
    client = redis.Redis(port=port, socket_timeout=2)
    assert client.ping()
    data = tmp_path / "var" / f"redis-{port}"
    assert client.config_get("dir")["dir"] == str(data)
    assert client.config_get("appendonly")["appendonly"] == "yes"  # the pool survives a restart of it
    [line] = result.stdout.splitlines()  # both URLs name one server: started once
    assert f"started a private redis-server for this node there (data in {data}" in line


def test_a_second_run_finds_it_answering_and_starts_nothing(tmp_path: Path, free_redis_port: int) -> None:
    url = f"redis://127.0.0.1:{free_redis_port}/0"
    ensure_redis(tmp_path, REDIS_URL=url, CELERY_BROKER_URL=url)

    again = ensure_redis(tmp_path, REDIS_URL=url, CELERY_BROKER_URL=url)

    assert again.returncode == 0
    assert again.stdout == f"Redis at 127.0.0.1:{free_redis_port} answers (REDIS_URL).\n"


def test_a_redis_that_answers_is_left_alone(tmp_path: Path) -> None:
    result = ensure_redis(tmp_path, REDIS_URL=SESSION_REDIS.url, CELERY_BROKER_URL=SESSION_REDIS.broker_url())

    assert result.returncode == 0
    assert result.stdout == f"Redis at 127.0.0.1:{SESSION_REDIS.port} answers (REDIS_URL).\n"
    assert not (tmp_path / "var").exists()


def test_a_remote_redis_set_in_the_environment_that_does_not_answer_stops_make_run_in_one_line(tmp_path: Path) -> None:
    result = ensure_redis(tmp_path, REDIS_URL="redis://redis.invalid:6379/0", CELERY_BROKER_URL=SESSION_REDIS.url)

    assert result.returncode == 1
    assert result.stderr == (
        "make run: REDIS_URL=redis://redis.invalid:6379/0 does not answer: start that Redis, "
        "or unset REDIS_URL to have make run start a private one on 127.0.0.1\n"
    )
    assert not (tmp_path / "var").exists()


def test_a_remote_redis_set_in_dot_env_counts_as_configured_too(tmp_path: Path) -> None:
    env_file = tmp_path / ".env"
    env_file.write_text("SECRET_KEY=x\nCELERY_BROKER_URL='redis://broker.invalid:6379/1'\n")

    result = ensure_redis(tmp_path, env_file=str(env_file), REDIS_URL=SESSION_REDIS.url)

    assert result.returncode == 1
    assert result.stderr.startswith("make run: CELERY_BROKER_URL=redis://broker.invalid:6379/1 does not answer")
