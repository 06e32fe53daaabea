"""docker-compose files, checked by reading them (there is no Docker engine here)."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from django.urls import resolve

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILES = ["docker-compose.yml", "docker-compose.node-b.yml"]
NODE_PROCESSES = [
    re.compile(r"^gunicorn sorcha_site\.wsgi:application --bind 0\.0\.0\.0:8000( --workers \d+)?$"),
    re.compile(r"^celery -A sorcha_site worker -l info$"),
    re.compile(r"^celery -A sorcha_site beat -l info --schedule \S+$"),
    re.compile(r"^python manage\.py migrate --noinput$"),
]
IMAGE_VARIABLES = {"postgres": {"POSTGRES_DB", "POSTGRES_USER", "POSTGRES_PASSWORD"}}


def load(name: str) -> dict[str, Any]:
    return dict(yaml.safe_load((ROOT / name).read_text()))


def merged_services() -> dict[str, dict[str, Any]]:
    """Services as `docker compose -f a -f b` sees them: later files override keys of earlier ones."""
    services: dict[str, dict[str, Any]] = {}
    for name in COMPOSE_FILES:
        for service, definition in load(name)["services"].items():
            current = services.setdefault(service, {})
            for key, value in definition.items():
                if key == "environment" and isinstance(value, dict):
                    current["environment"] = {**current.get("environment", {}), **value}
                else:
                    current[key] = value
    return services


def settings_variables() -> set[str]:
    """Every environment variable the node's settings read."""
    source = "\n".join(path.read_text() for path in (ROOT / "sorcha_site").glob("*.py"))
    pattern = (
        r"""(?:_read|_seconds|_positive_int|_non_negative_int|_host_ports|_url|db_url|environ\.get|env)"""
        r"""\(\s*["']([A-Z][A-Z0-9_]+)["']"""
    )
    return set(re.findall(pattern, source))


def is_node_service(definition: dict[str, Any]) -> bool:
    return "build" in definition or str(definition.get("image", "")).startswith("sorcha-node")


SERVICES = merged_services()


def test_every_compose_file_parses_and_names_its_services() -> None:
    for name in COMPOSE_FILES:
        assert load(name)["services"], name


@pytest.mark.parametrize("service", sorted(name for name, d in SERVICES.items() if is_node_service(d)))
def test_every_node_service_runs_one_of_the_nodes_processes(service: str) -> None:
    command = " ".join(shlex.quote(part) for part in SERVICES[service]["command"])

    assert any(process.match(command) for process in NODE_PROCESSES), command


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_environment_variable_a_service_sets_is_one_that_is_read(service: str) -> None:
    definition = SERVICES[service]
    allowed = (
        settings_variables() if is_node_service(definition) else IMAGE_VARIABLES.get(service.removeprefix("b-"), set())
    )

    unknown = set(definition.get("environment", {})) - allowed

    assert unknown == set(), f"{service} sets variables nothing reads: {sorted(unknown)}"


def test_the_settings_read_the_variables_the_architecture_names() -> None:
    assert {
        "SORCHA_SERVICE",
        "DATABASE_URL",
        "REDIS_URL",
        "REDIS_KEY_PREFIX",
        "PEER_SERVICE_URL",
        "SORCHA_SERVICE_TOKEN",
        "ADVERTISEMENT_TTL",
        "RECONCILE_INTERVAL",
        "GOSSIP_INTERVAL",
        "RESYNC_BACKOFF_MAX",
        "NODE_NAME",
        "PEER_PUBLIC_URL",
        "PEER_SEEDS",
    } <= settings_variables()


def test_published_ports_do_not_collide() -> None:
    published = [str(port).split(":")[0] for d in SERVICES.values() for port in d.get("ports", [])]

    assert published and len(published) == len(set(published)), published


def test_healthchecks_hit_endpoints_the_node_serves() -> None:
    checked = 0
    for service, definition in SERVICES.items():
        if not is_node_service(definition) or "healthcheck" not in definition:
            continue
        probe = " ".join(definition["healthcheck"]["test"])
        path = re.search(r"http://127\.0\.0\.1:8000(/[\w/-]*)", probe)
        assert path, f"{service} healthcheck does not call the web process: {probe}"
        assert resolve(path.group(1)).url_name in {"readyz", "healthz"}, service
        checked += 1
    assert checked >= 4


def test_services_wait_for_healthy_dependencies_and_restart() -> None:
    for service, definition in SERVICES.items():
        if not is_node_service(definition) or "migrate" in service or "depends_on" not in definition:
            continue
        conditions = {dep["condition"] for dep in definition["depends_on"].values()}
        assert conditions <= {"service_healthy", "service_completed_successfully"}, service
        assert definition.get("restart") == "unless-stopped", service


def test_the_web_workers_and_beat_reuse_one_image() -> None:
    images = {d.get("image") for d in SERVICES.values() if is_node_service(d)}

    assert images == {"sorcha-node:latest"}
    assert (ROOT / "Dockerfile").is_file()


# What an operator behind a TLS-terminating proxy puts in .env (docs/operations.md, "Deployment behind HTTPS").
HTTPS_DEPLOYMENT = {
    "SECRET_KEY": "compose-test-secret-key-3c9e1f7a5b2d8e4c6a0f1b3d5e7a9c2e4f6a8b0d",
    "SORCHA_SERVICE_TOKEN": "compose-test-service-token-0123456789",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
    "SESSION_COOKIE_SECURE": "true",
    "CSRF_COOKIE_SECURE": "true",
    "SECURE_PROXY_SSL_HEADER": "HTTP_X_FORWARDED_PROTO,https",
    "CSRF_TRUSTED_ORIGINS": "https://node.example.org",
}
DEPLOYMENT_VARIABLES = sorted(set(HTTPS_DEPLOYMENT) - {"SECRET_KEY", "SORCHA_SERVICE_TOKEN"})


def interpolate(value: object, shell: dict[str, str]) -> str:
    """Compose's ${VAR}, ${VAR:-default} and ${VAR:?message} against the operator's variables."""

    def substitute(match: re.Match[str]) -> str:
        name, operator, word = match.group(1), match.group(2) or "", match.group(3) or ""
        if shell.get(name):
            return shell[name]
        assert operator != ":?", f"compose would stop: {word}"
        return word

    return re.sub(r"\$\{([A-Z_][A-Z0-9_]*)(?:(:-|:\?)([^}]*))?\}", substitute, str(value))


def service_environment(service: str, shell: dict[str, str]) -> dict[str, str]:
    return {name: interpolate(value, shell) for name, value in SERVICES[service].get("environment", {}).items()}


@pytest.mark.parametrize("service", sorted(name for name, d in SERVICES.items() if is_node_service(d)))
def test_every_node_service_takes_the_https_deployment_variables(service: str) -> None:
    environment = service_environment(service, HTTPS_DEPLOYMENT)

    for name in DEPLOYMENT_VARIABLES:
        expected = (
            "false" if name == "SECURE_SSL_REDIRECT" and service.endswith("peer-service") else HTTPS_DEPLOYMENT[name]
        )
        assert environment.get(name) == expected, (service, name)


def test_without_them_compose_serves_plain_http() -> None:
    environment = service_environment("register-service", {"SECRET_KEY": "x", "SORCHA_SERVICE_TOKEN": "y"})

    assert environment["SECURE_SSL_REDIRECT"] == environment["SESSION_COOKIE_SECURE"] == "false"
    assert environment["SECURE_HSTS_SECONDS"] == "0"


def check_deploy(service: str) -> subprocess.CompletedProcess[str]:
    """`manage.py check --deploy --fail-level WARNING` in the environment compose gives the service."""
    env = {key: value for key, value in os.environ.items() if key in ("PATH", "HOME", "LANG")}
    env.update(service_environment(service, HTTPS_DEPLOYMENT))
    env.update({"SORCHA_ENV_FILE": os.devnull, "DJANGO_SETTINGS_MODULE": "sorcha_site.settings"})
    return subprocess.run(
        [sys.executable, "manage.py", "check", "--deploy", "--fail-level", "WARNING"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_the_register_service_passes_check_deploy_as_compose_configures_it_behind_https() -> None:
    result = check_deploy("register-service")

    assert result.returncode == 0, result.stdout + result.stderr


def test_the_peer_service_warns_only_that_it_does_not_redirect_its_internal_callers() -> None:
    result = check_deploy("peer-service")

    assert result.returncode != 0
    assert re.findall(r"\(security\.W\d+\)", result.stderr) == ["(security.W008)"], result.stderr
