"""deploy/monitoring/: the alert rules pass promtool, fire when they should, and name only what a node exports.

promtool comes from Debian's `prometheus` package (.ci/run installs it). The metric names are taken
from the rules' and the dashboard's PromQL and checked against the /metrics of a real node (gunicorn
on the session's Redis), so a renamed metric breaks this test instead of a dashboard in production.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.nodes import ROOT, Node
from tests.plugin import SESSION_REDIS

MONITORING = ROOT / "deploy" / "monitoring"
RULES = MONITORING / "alerts.yml"
RULE_TESTS = MONITORING / "alerts_test.yml"
DASHBOARD = MONITORING / "sorcha-node-dashboard.json"
PROMTOOL = shutil.which("promtool")

# What the rules and dashboard must cover (issue 24): one alert each.
ALERTS = {
    "SorchaFullSyncFailing",
    "SorchaFullSyncNeverSucceeded",
    "SorchaLocalPoolDiffersFromPublicRegisters",
    "SorchaStoreDegraded",
    "SorchaGossipFailingWithEveryPeer",
}
# Grafana's variables, replaced by values PromQL accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*", "$node": "node-a"}
PROMQL_WORDS = {"and", "or", "unless", "bool", "offset", "inf", "nan"}
# Suffixes prometheus_client adds to a family's name in its samples, by type.
SAMPLE_SUFFIXES = {"counter": ["_total"], "histogram": ["_bucket", "_sum", "_count"], "gauge": [""], "info": ["_info"]}

# Skipped on a developer's machine without it; CI installs it (.ci/run), so there a missing promtool fails.
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None and os.environ.get("CI") != "true",
    reason="promtool missing: apt-get install prometheus (.ci/run)",
)


def promtool(*args: str, cwd: Path = MONITORING) -> subprocess.CompletedProcess[str]:
    assert PROMTOOL is not None
    return subprocess.run([PROMTOOL, *args], cwd=cwd, capture_output=True, text=True, timeout=60)


def rule_expressions() -> list[str]:
    groups = yaml.safe_load(RULES.read_text())["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard() -> dict[str, Any]:
    return dict(json.loads(DASHBOARD.read_text()))


def dashboard_expressions() -> list[str]:
    """Every panel target's PromQL, Grafana's variables replaced."""
    expressions = []
    for panel in dashboard()["panels"]:
        for target in panel.get("targets", []):
            expression = target["expr"]
            for variable, value in GRAFANA_VARIABLES.items():
                expression = expression.replace(variable, value)
            expressions.append(expression)
    return expressions


def variable_metrics() -> set[str]:
    """The metrics the dashboard's variables read (`label_values(metric{...}, label)`)."""
    queries = [
        variable["query"]["query"] for variable in dashboard()["templating"]["list"] if variable["type"] == "query"
    ]
    return {match for query in queries for match in re.findall(r"label_values\(\s*([a-zA-Z_:][a-zA-Z0-9_:]*)", query)}


def metric_names(expression: str) -> set[str]:
    """The metric names a PromQL expression selects: identifiers that are not functions, aggregations,
    keywords, labels (in matchers or in by/on/... lists) or durations."""
    expression = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expression)
    expression = re.sub(r"\{[^}]*\}", " ", expression)
    expression = re.sub(r"\[[^\]]*\]", " ", expression)
    expression = re.sub(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expression)
    names = set()
    for match in re.finditer(r"(?<![\w.])([a-zA-Z_:][a-zA-Z0-9_:]*)\s*(\()?", expression):
        if match.group(2) is None and match.group(1) not in PROMQL_WORDS:
            names.add(match.group(1))
    return names


def test_the_metric_name_parser_finds_selectors_only() -> None:
    expression = (
        'max by (node_name) (sum by (job, instance) (increase(sorcha_gossip_exchanges_total{outcome!~"ok|x"}[15m]))'
        " * on (job, instance) group_left (node_name) sorcha_node_info) > 0 unless on (node_name) up == bool 1"
    )

    assert metric_names(expression) == {"sorcha_gossip_exchanges_total", "sorcha_node_info", "up"}
    assert metric_names('time() - max(sorcha_x{a="b"} > 0) > 2 * sorcha_y') == {"sorcha_x", "sorcha_y"}


@needs_promtool
def test_promtool_accepts_the_rules() -> None:
    result = promtool("check", "rules", str(RULES))

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


@needs_promtool
def test_each_alert_fires_on_its_failing_series_and_not_on_a_healthy_one() -> None:
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))

    result = promtool("test", "rules", str(RULE_TESTS))

    assert result.returncode == 0, result.stdout + result.stderr
    assert tested == ALERTS


@needs_promtool
def test_the_example_prometheus_configuration_loads_the_rules_with_a_token_file(tmp_path: Path) -> None:
    for name in ("prometheus.yml", "alerts.yml"):
        shutil.copy(MONITORING / name, tmp_path / name)
    (tmp_path / "sorcha-token").write_text("a-service-token-of-sixteen-or-more\n")

    result = promtool("check", "config", "prometheus.yml", cwd=tmp_path)

    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(ALERTS)} rules found" in result.stdout


def test_the_rules_are_the_alerts_asked_for() -> None:
    groups = yaml.safe_load(RULES.read_text())["groups"]

    assert {rule["alert"] for group in groups for rule in group["rules"]} == ALERTS


@needs_promtool
def test_every_dashboard_query_is_valid_promql(tmp_path: Path) -> None:
    """promtool parses each panel's query, as a recording rule of a throwaway rule file."""
    rules = [
        {"record": f"dashboard:panel_query_{index}", "expr": expr} for index, expr in enumerate(dashboard_expressions())
    ]
    rule_file = tmp_path / "dashboard-queries.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))

    result = promtool("check", "rules", str(rule_file))

    assert result.returncode == 0, result.stdout + result.stderr
    assert len(rules) >= 15


@pytest.fixture(scope="module")
def exported() -> Iterator[set[str]]:
    """The sample names a real node's /metrics can carry (every family, whatever its samples so far)."""
    node = Node("monitoring", SESSION_REDIS)
    try:
        node.start_web()
        response = node.api("GET", "/metrics")
        assert response.status_code == 200, response.text
        names = set()
        for family in text_string_to_metric_families(response.text):
            names.update(family.name + suffix for suffix in SAMPLE_SUFFIXES[family.type])
            names.update(sample.name for sample in family.samples)
        yield names
    finally:
        node.stop_all()
        node.drop_database()
        shutil.rmtree(node.directory, ignore_errors=True)


def test_every_metric_the_rules_name_is_one_the_node_exports(exported: set[str]) -> None:
    named = set().union(*(metric_names(expression) for expression in rule_expressions()))

    assert named - exported == set()
    assert {"sorcha_public_registers", "sorcha_node_info", "sorcha_store_degraded"} <= named


def test_every_metric_the_dashboard_names_is_one_the_node_exports(exported: set[str]) -> None:
    named = set().union(*(metric_names(expression) for expression in dashboard_expressions())) | variable_metrics()

    assert named - exported == set()
    # the panels the issue asks for: full syncs, pool sizes, the store, gossip, pushes
    assert {
        "sorcha_full_syncs_total",
        "sorcha_full_sync_duration_seconds_bucket",
        "sorcha_advertisements",
        "sorcha_store_degraded",
        "sorcha_gossip_exchanges_total",
        "sorcha_push_retries_total",
        "sorcha_node_info",
    } <= named
