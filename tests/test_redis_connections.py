"""Every Redis connection of the node comes from one place (sorcha_site.redis_connections).

A client built anywhere else would not follow Sentinel to a new primary (nor treat a demoted one
as lost): this test reads the node's source and fails on any other place that builds one.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sorcha_site", "registers", "peers", "tasks")
THE_ONE_PLACE = ROOT / "sorcha_site" / "redis_connections.py"
# Constructors and factories of redis-py clients and pools (and kombu's, should it be used directly).
BUILDERS = {"Redis", "StrictRedis", "from_url", "ConnectionPool", "BlockingConnectionPool", "Sentinel"}


def client_builders(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name in BUILDERS:
                found.append(f"{path.relative_to(ROOT)}:{node.lineno} {ast.unparse(func)}(…)")
    return found


def test_no_redis_client_is_built_outside_the_one_place() -> None:
    sources = [
        path for package in PACKAGES for path in (ROOT / package).rglob("*.py") if "migrations" not in path.parts
    ]
    assert len(sources) > 40  # the scan sees the node's code

    builders = [found for path in sources if path != THE_ONE_PLACE for found in client_builders(path)]

    assert builders == []


def test_the_scan_finds_a_client_built_in_the_one_place() -> None:
    # The scan is not blind: the one place does build one (for a store given an explicit URL).
    assert any("from_url" in found for found in client_builders(THE_ONE_PLACE))
