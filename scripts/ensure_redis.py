"""Make sure the node's Redis answers before `make run` starts the node's processes.

For each Redis the node is configured with (REDIS_URL, CELERY_BROKER_URL; from the environment,
else `.env`, else the defaults of sorcha_site/settings.py):

- it answers PING: nothing to do;
- nothing answers on a loopback address (127.0.0.1, localhost, ::1): start a private `redis-server`
  there for this node, its data under `var/redis-<port>/` (append-only file, so the advertisement
  pool survives restarts), installing Debian's `redis-server` package first where it is missing;
- nothing answers on another host: that Redis was configured on purpose, so stop with one line
  saying which variable points where (exit status 1).

Usage: python scripts/ensure_redis.py [--var-dir DIR]
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parent.parent
VARIABLES = {"REDIS_URL": "redis://127.0.0.1:6379/0", "CELERY_BROKER_URL": "redis://127.0.0.1:6379/1"}
LOOPBACK = {"127.0.0.1", "localhost", "::1"}
START_TIMEOUT = 10.0


class RedisUnavailable(Exception):
    """A configured Redis that this script must not (or cannot) start."""


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of a .env file (as django-environ reads them: comments and quotes allowed)."""
    values: dict[str, str] = {}
    if not path.is_file():
        return values
    for line in path.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _, value = line.removeprefix("export ").partition("=")
        values[key.strip()] = value.strip().strip("'\"")
    return values


def configured_urls(environ: dict[str, str]) -> dict[str, tuple[str, bool]]:
    """Each variable's URL and whether the operator set it (environment first, then .env, as the settings do)."""
    env_file = read_env_file(Path(environ.get("SORCHA_ENV_FILE", ROOT / ".env")))
    urls = {}
    for name, default in VARIABLES.items():
        value = environ.get(name) or env_file.get(name)
        urls[name] = (value, True) if value else (default, False)
    return urls


def answers(host: str, port: int) -> bool:
    """Whether a Redis answers PING there (a `-NOAUTH` error is an answer too: someone's Redis is there)."""
    try:
        with socket.create_connection((host, port), timeout=1) as connection:
            connection.sendall(b"*1\r\n$4\r\nPING\r\n")
            return connection.recv(64)[:1] in (b"+", b"-")
    except OSError:
        return False


def redis_server_binary() -> str:
    """redis-server's path, installed from Debian's packages if missing (as .ci/run does)."""
    binary = shutil.which("redis-server")
    if binary:
        return binary
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RedisUnavailable("redis-server is not installed: install it (sudo apt-get install redis-server)")
    print("Installing redis-server from Debian's packages...", flush=True)
    apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update", "-qq"], ["apt-get", "install", "-y", "-qq", "redis-server"]):
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL, env=apt_env)
    binary = shutil.which("redis-server")
    if not binary:
        raise RedisUnavailable("redis-server is still missing after apt-get install redis-server")
    return binary


def start_private(host: str, port: int, var_dir: Path) -> Path | None:
    """A daemonized redis-server on host:port with its data in var_dir/redis-<port>/; returns that directory
    (None when the Redis that Debian's package starts on install answers there now)."""
    binary = redis_server_binary()
    if answers(host, port):
        return None
    data = var_dir / f"redis-{port}"
    data.mkdir(parents=True, exist_ok=True)
    bind = "127.0.0.1 -::1" if host != "::1" else "::1"
    subprocess.run(
        [
            binary,
            "--port",
            str(port),
            "--bind",
            *bind.split(),
            "--dir",
            str(data),
            "--appendonly",
            "yes",
            "--daemonize",
            "yes",
            "--pidfile",
            str(data / "redis.pid"),
            "--logfile",
            str(data / "redis.log"),
        ],
        check=True,
    )
    deadline = time.monotonic() + START_TIMEOUT
    while not answers(host, port):
        if time.monotonic() > deadline:
            raise RedisUnavailable(f"the private redis-server on {host}:{port} did not answer; see {data}/redis.log")
        time.sleep(0.05)
    return data


def ensure(environ: dict[str, str], var_dir: Path) -> list[str]:
    """Bring up what is missing; returns one line per Redis saying what was found or done."""
    report: list[str] = []
    seen: set[tuple[str, int]] = set()
    for name, (url, explicit) in configured_urls(environ).items():
        parsed = urlparse(url)
        if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
            if explicit and parsed.scheme == "unix" and not Path(parsed.path).exists():
                raise RedisUnavailable(f"{name}={url}: no socket at {parsed.path}; start that Redis first")
            continue
        host, port = parsed.hostname, parsed.port or 6379
        if (host, port) in seen:
            continue
        seen.add((host, port))
        if answers(host, port):
            report.append(f"Redis at {host}:{port} answers ({name}).")
        elif host in LOOPBACK:
            data = start_private(host, port, var_dir)
            if data is None:
                report.append(f"Installed redis-server; Debian's service answers at {host}:{port} ({name}).")
                continue
            report.append(
                f"Nothing answered at {host}:{port} ({name}): started a private redis-server for this node there "
                f"(data in {data}; stop it with: redis-cli -p {port} shutdown)."
            )
        else:
            raise RedisUnavailable(
                f"{name}={url} does not answer: start that Redis, or unset {name} "
                "to have make run start a private one on 127.0.0.1"
            )
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--var-dir", type=Path, default=ROOT / "var", help="where a private Redis keeps its data")
    options = parser.parse_args()
    try:
        for line in ensure(dict(os.environ), options.var_dir):
            print(line)
    except (RedisUnavailable, subprocess.CalledProcessError) as exc:
        print(f"make run: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
