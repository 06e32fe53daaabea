"""`make demo`: two local Sorcha nodes that gossip, seeded with registers, until Ctrl-C.

Each node runs its web process, a Celery worker and beat, with its own SQLite database,
its own Redis key prefix and broker database, short intervals, and the other node as
its seed. honcho runs every process and stops them all on Ctrl-C.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
NODES = {"a": 8101, "b": 8102}
REDIS = os.environ.get("DEMO_REDIS", "redis://127.0.0.1:6379")
BROKER_DB = {"a": 11, "b": 12}


def node_environment(name: str, token: str, secret: str) -> dict[str, str]:
    port = NODES[name]
    other = next(n for n in NODES if n != name)
    database = ROOT / "var" / "demo" / f"node-{name}.sqlite3"
    return {
        **os.environ,
        "SORCHA_ENV_FILE": os.devnull,
        "DEBUG": "false",
        "SECRET_KEY": secret,
        "SORCHA_SERVICE_TOKEN": token,
        "ALLOWED_HOSTS": "*",
        "DATABASE_URL": f"sqlite:///{database}",
        "REDIS_URL": f"{REDIS}/0",
        "CELERY_BROKER_URL": f"{REDIS}/{BROKER_DB[name]}",
        "REDIS_KEY_PREFIX": f"demo-node-{name}",
        "PEER_SERVICE_URL": f"http://127.0.0.1:{port}",
        "PEER_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "PEER_SEEDS": f"http://127.0.0.1:{NODES[other]}",
        "NODE_NAME": f"demo-node-{name}",
        "ADVERTISEMENT_TTL": "60",
        "RECONCILE_INTERVAL": "20",
        "GOSSIP_INTERVAL": "20",
        "RESYNC_BACKOFF_MAX": "5",
        "GOSSIP_BACKOFF_BASE": "1",
        "GOSSIP_BACKOFF_MAX": "10",
        # Both demo nodes live on 127.0.0.1: private addresses are opted in for development.
        "GOSSIP_ALLOW_PRIVATE": "true",
        "PORT": str(port),
    }


def start_fresh(name: str) -> None:
    """Each demo starts empty: its own database file and its own keys in Redis (nothing else is touched)."""
    import redis

    (ROOT / "var" / "demo" / f"node-{name}.sqlite3").unlink(missing_ok=True)
    client = redis.Redis.from_url(f"{REDIS}/0")
    for key in client.scan_iter(match=f"demo-node-{name}:*", count=1000):
        client.delete(key)
    redis.Redis.from_url(f"{REDIS}/{BROKER_DB[name]}").flushdb()  # the demo's own broker database


def prepare(name: str, env: dict[str, str], password: str) -> None:
    (ROOT / "var" / "demo").mkdir(parents=True, exist_ok=True)
    start_fresh(name)
    python = str(BIN / "python")
    subprocess.run([python, "manage.py", "migrate", "--noinput"], cwd=ROOT, env=env, check=True, capture_output=True)
    create_admin = (
        "from django.contrib.auth.models import User\n"
        "user, _ = User.objects.get_or_create(username='admin', defaults={'is_staff': True, 'is_superuser': True})\n"
        f"user.is_staff = user.is_superuser = True; user.set_password({password!r}); user.save()\n"
    )
    subprocess.run([python, "manage.py", "shell", "-c", create_admin], cwd=ROOT, env=env, check=True)


def seed(url: str, token: str, node: str) -> None:
    """Runs as one of honcho's processes: waits for the node, creates registers, then stays quiet."""
    session = requests.Session()
    session.headers["Authorization"] = f"Bearer {token}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if session.get(f"{url}/readyz", timeout=2).status_code == 200:
                break
        except requests.RequestException:
            time.sleep(0.5)
    for index in range(3):
        body = {
            "name": f"{node}-public-{index + 1}",
            "description": f"public register {index + 1} of node {node}",
            "advertise": True,
            "latestVersion": index + 1,
        }
        session.post(f"{url}/api/registers/", json=body, timeout=10).raise_for_status()
    for index in range(2):
        body = {"name": f"{node}-private-{index + 1}", "advertise": False}
        session.post(f"{url}/api/registers/", json=body, timeout=10).raise_for_status()
    print(f"node {node}: created 3 public and 2 private registers (run {uuid.uuid4().hex[:6]})", flush=True)
    signal.pause()  # honcho stops everything when one process ends: stay until Ctrl-C


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", nargs=3, metavar=("URL", "TOKEN", "NODE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed:
        seed(*args.seed)
        return

    from honcho.manager import Manager

    token, secret, password = secrets.token_urlsafe(24), secrets.token_urlsafe(40), secrets.token_urlsafe(12)
    manager = Manager()
    for name, port in NODES.items():
        env = node_environment(name, token, secret)
        prepare(name, env, password)
        schedule = ROOT / "var" / "demo" / f"celerybeat-{name}"
        commands = {
            "web": f"{BIN}/gunicorn sorcha_site.wsgi:application --bind 127.0.0.1:{port} --workers 2 --threads 4",
            "worker": f"{BIN}/celery -A sorcha_site worker -l info --concurrency 2 -n demo-{name}@%h",
            "beat": f"{BIN}/celery -A sorcha_site beat -l info --schedule {schedule}",
            "seed": f"{BIN}/python {Path(__file__)} --seed http://127.0.0.1:{port} {token} {name}",
        }
        for process, command in commands.items():
            manager.add_process(f"{name}-{process}", command, env=env, cwd=str(ROOT))

    print(
        "\nTwo Sorcha nodes are starting (Ctrl-C stops them all):\n"
        + "".join(
            f"  node {name}: admin http://127.0.0.1:{port}/admin/peers/peernetwork/  "
            f"API http://127.0.0.1:{port}/api/docs/\n"
            for name, port in NODES.items()
        )
        + f"  admin user: admin   password: {password}\n"
        f"  API token (both nodes): {token}\n"
        "  Node B's Available Registers lists node A's public registers within seconds.\n",
        flush=True,
    )
    manager.loop()
    sys.exit(manager.returncode)


if __name__ == "__main__":
    main()
