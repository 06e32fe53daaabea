"""docker-compose.sentinel.yml, the Redis high-availability override, checked by reading it.

There is no Docker engine here: the file is parsed, the settings it gives the node are loaded in a
fresh interpreter, and the sentinel configuration its command writes is run by a real sentinel.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import redis

from tests.deploy.test_compose import is_node_service, load, settings_variables
from tests.helpers import wait_until
from tests.redis_server import RedisServer, free_port
from tests.settings.helpers import manage

OVERRIDE = load("docker-compose.sentinel.yml")
BASE = load("docker-compose.yml")
SENTINELS = sorted(name for name in OVERRIDE["services"] if name.startswith("sentinel-"))


def sentinel_config_lines(service: str) -> list[str]:
    """The lines the sentinel's command writes into its configuration file."""
    script = OVERRIDE["services"][service]["command"][-1]
    words = shlex.split(script.split(">", 1)[0])
    assert words[:2] == ["printf", "%s\\n"], script
    return words[2:]


def monitor(service: str) -> tuple[str, str, int, int]:
    [line] = [line for line in sentinel_config_lines(service) if line.startswith("sentinel monitor ")]
    _, _, name, host, port, quorum = line.split()
    return name, host, int(port), int(quorum)


def node_environment(service: str) -> dict[str, str]:
    """What `docker compose -f docker-compose.yml -f docker-compose.sentinel.yml` gives a node service."""
    base = dict(BASE["services"][service]["environment"])
    return {**base, **OVERRIDE["services"][service]["environment"]}


def test_three_sentinels_watch_the_primary_service_with_a_majority_quorum() -> None:
    assert len(SENTINELS) == 3
    for service in SENTINELS:
        name, host, port, quorum = monitor(service)
        assert (name, host, port) == ("sorcha", "redis", 6379), service
        assert quorum == 2, service
        assert "port 26379" in sentinel_config_lines(service)
        assert OVERRIDE["services"][service]["command"][-1].endswith("--sentinel")


def test_the_replica_replicates_the_primary_service() -> None:
    command = OVERRIDE["services"]["redis-replica"]["command"]

    assert command[command.index("--replicaof") + 1 : command.index("--replicaof") + 3] == ["redis", "6379"]


def test_every_node_service_asks_the_three_sentinels_and_waits_for_them() -> None:
    node_services = [name for name, definition in BASE["services"].items() if is_node_service(definition)]
    assert len(node_services) >= 5
    for service in node_services:
        environment = node_environment(service)
        assert sorted(environment["REDIS_SENTINELS"].split(",")) == [f"{name}:26379" for name in SENTINELS], service
        assert environment["REDIS_SENTINEL_SERVICE"] == "sorcha", service
        assert environment["CELERY_BROKER_URL"] == "", service
        waits_for = OVERRIDE["services"][service]["depends_on"]
        assert {name: waits_for[name]["condition"] for name in SENTINELS} == dict.fromkeys(SENTINELS, "service_healthy")
        assert set(OVERRIDE["services"][service]["environment"]) <= settings_variables(), service


def test_with_the_override_every_connection_and_the_broker_follow_the_sentinels() -> None:
    environment = {
        name: value
        for name, value in node_environment("worker").items()
        if not str(value).startswith("${") and name not in ("DATABASE_URL",)
    }
    code = (
        "import json; from django.conf import settings; print(json.dumps({"
        "'aliases': {a: c['OPTIONS'].get('CLIENT_CLASS') for a, c in settings.CACHES.items()"
        " if 'REDIS' in c['BACKEND'].upper()},"
        "'broker': settings.CELERY_BROKER_URL, 'master': settings.CELERY_BROKER_TRANSPORT_OPTIONS.get('master_name')}))"
    )

    result = manage("shell", "--verbosity", "0", "-c", code, **environment)

    assert result.returncode == 0, result.stderr
    built: dict[str, Any] = json.loads(result.stdout)
    assert built["aliases"] and set(built["aliases"].values()) == {"django_redis.client.SentinelClient"}
    assert built["broker"] == ";".join(f"sentinel://{name}:26379/1" for name in SENTINELS)
    assert built["master"] == "sorcha"


def test_the_sentinel_configuration_the_command_writes_runs_in_a_real_sentinel(tmp_path: Path) -> None:
    # given: the configuration as the command writes it, aimed at a primary on this machine
    primary = RedisServer()
    primary.start()
    port = free_port()
    lines = [
        re.sub(r"^sentinel monitor sorcha redis 6379", f"sentinel monitor sorcha 127.0.0.1 {primary.port}", line)
        for line in sentinel_config_lines("sentinel-1")
    ]
    config = tmp_path / "sentinel.conf"
    config.write_text("\n".join([*lines, f"port {port}", "bind 127.0.0.1"]) + "\n")

    # when
    sentinel = subprocess.Popen(
        [shutil.which("redis-server") or "redis-server", str(config), "--sentinel"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        # then: it runs, and reports the primary it watches
        client = redis.Redis(port=port, socket_timeout=2)
        wait_until(lambda: _master(client) == ("127.0.0.1", primary.port), timeout=20, message="sentinel's primary")
        assert client.sentinel_master("sorcha")["quorum"] == 2
    finally:
        sentinel.terminate()
        sentinel.wait(timeout=10)
        primary.stop()


def _master(client: redis.Redis) -> tuple[str, int] | None:
    try:
        host, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "sorcha")
    except (redis.ConnectionError, TypeError, ValueError):
        return None
    return (host.decode(), int(port))
