"""Reading one environment variable for the settings: the process's environment, then `.env`.

Each reader turns a malformed value into `ImproperlyConfigured` naming the variable, so a node
never starts half-configured. `sorcha_site/settings.py` reads every variable through them.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import environ
from django.core.exceptions import ImproperlyConfigured

env = environ.Env()
# `.env` fills in what the environment does not set (SORCHA_ENV_FILE=/dev/null: no file, as tools and tests run).
_env_file = Path(os.environ.get("SORCHA_ENV_FILE", Path(__file__).resolve().parent.parent / ".env"))
if _env_file.is_file():
    environ.Env.read_env(str(_env_file), overwrite=False)


def read(name: str, cast: Any, default: Any) -> Any:
    """Read one variable, turning any parse failure into a message that names it."""
    try:
        return env(name, cast=cast, default=default)
    except (ValueError, TypeError, ImproperlyConfigured) as exc:
        raise ImproperlyConfigured(f"{name} is malformed: {exc}") from exc


def seconds(name: str, default: float, minimum: float = 0.0) -> float:
    value = read(name, float, default)
    if value <= minimum:
        raise ImproperlyConfigured(f"{name} must be a number of seconds greater than {minimum:g}, got {value!r}")
    return float(value)


def positive_int(name: str, default: int) -> int:
    value = read(name, int, default)
    if value < 1:
        raise ImproperlyConfigured(f"{name} must be a positive integer, got {value!r}")
    return int(value)


def url(name: str, default: str, schemes: tuple[str, ...]) -> str:
    value = str(read(name, str, default)).strip()
    parsed = urlparse(value)
    if parsed.scheme not in schemes or not (parsed.hostname or parsed.path):
        raise ImproperlyConfigured(f"{name} must be a URL with scheme {' or '.join(schemes)}, got {value!r}")
    return value


def non_negative_int(name: str, default: int) -> int:
    value = read(name, int, default)
    if value < 0:
        raise ImproperlyConfigured(f"{name} must be a whole number, 0 or more, got {value!r}")
    return int(value)


def host_ports(name: str) -> list[tuple[str, int]]:
    """`host:port,host:port` as a list of pairs."""
    pairs = []
    for item in read(name, list, []):
        host, _, port = item.strip().rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ImproperlyConfigured(f"{name} must be comma-separated host:port pairs, got {item.strip()!r}")
        pairs.append((host.strip("[]"), int(port)))
    return pairs
