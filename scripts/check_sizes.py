"""Fail when a Python module of the project is over 400 lines or a class over 300 (STYLE.md: a module does one thing).

Looks at every `*.py` under the project's code, script, bench and test directories, migrations excepted,
and prints one line per offence: path, name, lines, limit.

Usage: python scripts/check_sizes.py [ROOT]   (ROOT: the project's directory, by default this script's parent's)
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

MODULE_MAX_LINES = 400
CLASS_MAX_LINES = 300
DIRECTORIES = ("sorcha_site", "registers", "peers", "tasks", "scripts", "bench", "tests")


def modules(root: Path) -> Iterator[Path]:
    for directory in DIRECTORIES:
        for path in sorted((root / directory).rglob("*.py")):
            if "migrations" not in path.relative_to(root).parts:
                yield path


def offences(root: Path, path: Path) -> Iterator[str]:
    source = path.read_text(encoding="utf-8")
    shown = path.relative_to(root)
    lines = len(source.splitlines())
    if lines > MODULE_MAX_LINES:
        yield f"{shown}: module {path.stem} has {lines} lines (limit {MODULE_MAX_LINES})"
    for node in ast.walk(ast.parse(source, filename=str(path))):
        if isinstance(node, ast.ClassDef):
            first = min([node.lineno, *(decorator.lineno for decorator in node.decorator_list)])
            lines = (node.end_lineno or node.lineno) - first + 1
            if lines > CLASS_MAX_LINES:
                yield f"{shown}:{node.lineno}: class {node.name} has {lines} lines (limit {CLASS_MAX_LINES})"


def main(argv: list[str]) -> int:
    root = Path(argv[1]).resolve() if len(argv) > 1 else Path(__file__).resolve().parent.parent
    found = [offence for path in modules(root) for offence in offences(root, path)]
    for offence in found:
        print(offence)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
