"""scripts/check_sizes.py: no module over 400 lines, no class over 300 (STYLE.md), run as `make lint` runs it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHECKER = ROOT / "scripts" / "check_sizes.py"
DATACLASS_IMPORT = "from dataclasses import dataclass\n\n"


def check_sizes(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(CHECKER), str(root)], capture_output=True, text=True, timeout=120, check=False
    )


def module_of(lines: int) -> str:
    return "".join(f"VALUE_{number} = {number}\n" for number in range(lines))


def class_of(name: str, lines: int) -> str:
    """A class of exactly `lines` lines, its decorator included."""
    body = "".join(f"    value_{number} = {number}\n" for number in range(lines - 2))
    return f"@dataclass\nclass {name}:\n{body}"


def write(path: Path, source: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(source)


def test_a_module_over_400_lines_and_a_class_over_300_fail_the_check_each_named(tmp_path: Path) -> None:
    # given: a 401-line module, and a 301-line class in a module under the limit
    write(tmp_path / "registers" / "long_module.py", module_of(401))
    write(tmp_path / "tests" / "peers" / "wide_class.py", DATACLASS_IMPORT + class_of("WideClass", 301))

    # when
    result = check_sizes(tmp_path)

    # then: it fails with one line per offence, naming the path, the name, the lines and the limit
    assert result.returncode == 1, result.stdout + result.stderr
    offences = result.stdout.strip().splitlines()
    assert len(offences) == 2, offences
    assert offences[0] == "registers/long_module.py: module long_module has 401 lines (limit 400)"
    assert offences[1] == "tests/peers/wide_class.py:4: class WideClass has 301 lines (limit 300)"


def test_modules_and_classes_at_the_limits_and_migrations_pass_the_check(tmp_path: Path) -> None:
    # given: a module of exactly 400 lines holding a class of exactly 300, and a long migration
    write(tmp_path / "peers" / "at_limit.py", DATACLASS_IMPORT + module_of(98) + class_of("AtLimit", 300))
    write(tmp_path / "registers" / "migrations" / "0001_initial.py", module_of(900))

    # when
    result = check_sizes(tmp_path)

    # then
    assert (tmp_path / "peers" / "at_limit.py").read_text().count("\n") == 400
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout == ""


def test_the_project_has_no_module_over_400_lines_nor_class_over_300() -> None:
    result = check_sizes(ROOT)

    assert result.returncode == 0, f"split these by concern:\n{result.stdout}{result.stderr}"
