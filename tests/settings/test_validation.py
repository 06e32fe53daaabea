"""Every validation in sorcha_site/settings.py: a bad value stops the process with one line naming the variable.

Each case starts `manage.py check` in a fresh interpreter with one variable changed from a valid
environment, as an operator's typo would, and expects a non-zero exit and a one-line message.
"""

from __future__ import annotations

import re

import pytest

from tests.settings.helpers import ROOT, manage

SECONDS = [
    "ADVERTISEMENT_TTL",
    "RECONCILE_INTERVAL",
    "GOSSIP_INTERVAL",
    "RESYNC_BACKOFF_MAX",
    "CLOCK_SKEW_MAX",
    "STORE_BREAKER_COOLDOWN",
    "STORE_SOCKET_TIMEOUT",
    "PEER_SERVICE_CONNECT_TIMEOUT",
    "PEER_SERVICE_READ_TIMEOUT",
    "GOSSIP_BACKOFF_BASE",
    "GOSSIP_BACKOFF_MAX",
    "GOSSIP_CONNECT_TIMEOUT",
    "GOSSIP_TRIGGER_DELAY",
    "GOSSIP_RATE_WINDOW",
    "GOSSIP_EXCHANGE_DEADLINE",
    "PUSH_COALESCE_WINDOW",
    "FULL_SYNC_SNAPSHOT_MARGIN",
    "STORE_JOURNAL_MAX_AGE",
    "PUSH_CHECK_INTERVAL",
]
POSITIVE_INTS = [
    "SORCHA_MAX_BODY_BYTES",
    "SORCHA_BULK_MAX_ITEMS",
    "SORCHA_DIGEST_MAX_ITEMS",
    "SORCHA_LIST_LIMIT_MAX",
    "STORE_JOURNAL_MAX_OPS",
    "GOSSIP_MAX_BODY_BYTES",
    "GOSSIP_MAX_PEERS",
    "GOSSIP_MAX_REMOTE_ADS",
    "GOSSIP_RATE_PER_ADDRESS",
    "GOSSIP_RATE_PER_PEER",
    "GOSSIP_ROUND_WORKERS",
    "GOSSIP_FANOUT",
    "GOSSIP_MAX_ORIGINS",
    "GOSSIP_RATE_SETS_PER_PEER",
    "GOSSIP_RATE_BUMPS_PER_ORIGIN",
    "GOSSIP_SET_BUDGET_BYTES",
    "SYNC_HISTORY_MAX",
]
URLS = ["REDIS_URL", "PEER_SERVICE_URL", "CELERY_BROKER_URL"]

CASES: list[tuple[str, dict[str, str | None]]] = [
    *[(name, {name: "soon"}) for name in SECONDS],
    *[(name, {name: "0"}) for name in SECONDS],
    *[(name, {name: "-2.5"}) for name in SECONDS],
    *[(name, {name: "many"}) for name in POSITIVE_INTS],
    *[(name, {name: "0"}) for name in POSITIVE_INTS],
    *[(name, {name: "ftp://example.org/"}) for name in URLS],
    *[(name, {name: "127.0.0.1:6379"}) for name in URLS],
    ("SORCHA_SERVICE", {"SORCHA_SERVICE": "both"}),
    ("PEER_ADMISSION", {"PEER_ADMISSION": "closed"}),
    ("PEER_ALLOWLIST", {"PEER_ALLOWLIST": "0123456789abcdef0123456789abcdeg"}),
    ("PEER_ALLOWLIST", {"PEER_ALLOWLIST": "0123456789abcdef"}),
    ("REDIS_KEY_PREFIX", {"REDIS_KEY_PREFIX": "two words"}),
    ("REDIS_KEY_PREFIX", {"REDIS_KEY_PREFIX": "   "}),
    ("SORCHA_SERVICE_TOKEN", {"SORCHA_SERVICE_TOKEN": "fifteen-chars.."}),
    ("SORCHA_SERVICE_TOKEN", {"SORCHA_SERVICE_TOKEN": None}),
    ("SECRET_KEY", {"SECRET_KEY": None}),
    ("DATABASE_URL", {"DATABASE_URL": "nosuchdb://somewhere/x"}),
    ("PEER_SEEDS", {"PEER_SEEDS": "http://peer-a.example.org,ftp://peer-b.example.org"}),
    ("PEER_SEEDS", {"PEER_SEEDS": "peer-a.example.org"}),
    ("SECURE_HSTS_SECONDS", {"SECURE_HSTS_SECONDS": "-1"}),
    ("SECURE_HSTS_SECONDS", {"SECURE_HSTS_SECONDS": "a year"}),
    ("SECURE_PROXY_SSL_HEADER", {"SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto"}),
    ("SECURE_PROXY_SSL_HEADER", {"SECURE_PROXY_SSL_HEADER": "X_FORWARDED_PROTO,https"}),
    ("CSRF_TRUSTED_ORIGINS", {"CSRF_TRUSTED_ORIGINS": "node.example.org"}),
    ("REDIS_SENTINELS", {"REDIS_SENTINELS": "sentinel-1", "REDIS_SENTINEL_SERVICE": "sorcha"}),
    ("REDIS_SENTINELS", {"REDIS_SENTINELS": "sentinel-1:port", "REDIS_SENTINEL_SERVICE": "sorcha"}),
    ("REDIS_SENTINELS", {"REDIS_SENTINELS": "sentinel-1:26379"}),
    ("REDIS_SENTINEL_SERVICE", {"REDIS_SENTINEL_SERVICE": "sorcha"}),
    # A broker behind Sentinel needs the name of the service the sentinels watch.
    ("CELERY_BROKER_URL", {"CELERY_BROKER_URL": "sentinel://sentinel-1:26379/1"}),
    # The rule this node exists for: a TTL under twice the longest refresh interval lapses on one late refresh.
    ("ADVERTISEMENT_TTL", {"ADVERTISEMENT_TTL": "10", "RECONCILE_INTERVAL": "5.5", "GOSSIP_INTERVAL": "1"}),
    ("ADVERTISEMENT_TTL", {"ADVERTISEMENT_TTL": "10", "RECONCILE_INTERVAL": "1", "GOSSIP_INTERVAL": "5.5"}),
    ("ADVERTISEMENT_TTL", {"ADVERTISEMENT_TTL": "300"} | {"RECONCILE_INTERVAL": "151"}),
    # A snapshot margin as long as the interval would sweep nothing a full sync ever read.
    ("FULL_SYNC_SNAPSHOT_MARGIN", {"FULL_SYNC_SNAPSHOT_MARGIN": "150"}),
]


def case_id(case: tuple[str, dict[str, str | None]]) -> str:
    return ",".join(f"{name}={value}" for name, value in case[1].items())


@pytest.mark.parametrize(("variable", "changes"), CASES, ids=[case_id(case) for case in CASES])
def test_a_bad_value_stops_the_process_with_one_line_naming_the_variable(
    variable: str, changes: dict[str, str | None]
) -> None:
    result = manage("check", **changes)

    assert result.returncode != 0, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert variable in lines[0], lines[0]
    assert "Traceback" not in result.stderr


def test_the_valid_environment_of_these_cases_passes_the_checks() -> None:
    result = manage("check")

    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("interval", ["RECONCILE_INTERVAL", "GOSSIP_INTERVAL"])
def test_a_ttl_of_exactly_twice_the_longest_interval_is_accepted(interval: str) -> None:
    timings = {"ADVERTISEMENT_TTL": "10", "RECONCILE_INTERVAL": "2", "GOSSIP_INTERVAL": "2", interval: "5"}

    result = manage("check", **timings)

    assert result.returncode == 0, result.stderr


def test_the_ttl_message_says_why() -> None:
    result = manage("check", ADVERTISEMENT_TTL="10", GOSSIP_INTERVAL="6")

    assert "at least twice the longest refresh interval" in result.stderr
    assert "GOSSIP_INTERVAL=6s" in result.stderr


def test_every_validated_variable_of_the_settings_has_a_case() -> None:
    """A variable added to settings.py with _seconds/_positive_int/_url gets a case here, or this fails."""
    source = (ROOT / "sorcha_site" / "settings.py").read_text()
    validated = {
        helper: set(re.findall(rf"""\b{helper}\(\s*["']([A-Z][A-Z0-9_]+)["']""", source))
        for helper in ("_seconds", "_positive_int", "_url", "_non_negative_int", "_host_ports")
    }

    assert validated["_seconds"] == set(SECONDS)
    assert validated["_positive_int"] == set(POSITIVE_INTS)
    assert validated["_url"] == set(URLS)
    assert validated["_non_negative_int"] | validated["_host_ports"] <= {variable for variable, _ in CASES}
