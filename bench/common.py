"""Shared pieces of the benchmarks: the machine, result files, charts, a private Redis, seeding."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# BENCH_RESULTS_DIR: where a trial run writes, so it leaves the results of a full run alone.
RESULTS = Path(os.environ.get("BENCH_RESULTS_DIR") or ROOT / "bench" / "results").resolve()
sys.path.insert(0, str(ROOT))
os.environ.setdefault("SORCHA_ENV_FILE", os.devnull)


def machine() -> dict[str, Any]:
    redis_version = subprocess.run(["redis-server", "--version"], capture_output=True, text=True).stdout.split()
    return {
        "date": datetime.now(tz=UTC).strftime("%Y-%m-%d"),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "redis": next((part.split("=")[1] for part in redis_version if part.startswith("v=")), "unknown"),
        "platform": platform.platform(),
    }


def print_table(title: str, headers: Sequence[str], rows: Sequence[Sequence[Any]], text_columns: int = 0) -> None:
    """Figures right-aligned; the first `text_columns` columns (names, not figures) left-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    widths = [max(len(str(header)), *(len(row[i]) for row in cells)) for i, header in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(str(header).ljust(width) for header, width in zip(headers, widths, strict=True)))
    print("  ".join("-" * width for width in widths))
    for row in cells:
        print(
            "  ".join(
                cell.ljust(width) if i < text_columns else cell.rjust(width)
                for i, (cell, width) in enumerate(zip(row, widths, strict=True))
            )
        )


def write_results(name: str, payload: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **payload}, indent=2))
    print(f"\nwrote {shown(path)}")
    return path


def shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def bound(figure: str, value: float | None, limit: float) -> dict[str, Any]:
    """One bound of the tracker issue as every bench writes it into its JSON (`"bounds": [...]`):
    the figure measured in this run, the bound it must not exceed, and whether it was met.
    A figure this run did not measure (a trial run at other sizes) has `value` and `met` null."""
    return {
        "figure": figure,
        "value": None if value is None else round(value, 4),
        "bound": limit,
        "met": None if value is None else value <= limit,
    }


BOUND_HEADERS = ["figure", "value", "bound", "met"]


def bound_row(item: dict[str, Any]) -> list[Any]:
    """One bound as a table row, `met` as yes / NO / not measured."""
    value = "-" if item["value"] is None else f"{item['value']:.3f}"
    met = {True: "yes", False: "NO", None: "not measured"}[item["met"]]
    return [item["figure"], value, item["bound"], met]


def print_bounds(bounds: Sequence[dict[str, Any]]) -> None:
    print_table("Bounds of the tracker issue", BOUND_HEADERS, [bound_row(item) for item in bounds], text_columns=1)


def bar_chart(name: str, title: str, labels: Sequence[str], series: dict[str, Sequence[float]], unit: str) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(parents=True, exist_ok=True)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    width = 0.8 / max(len(series), 1)
    for index, (label, values) in enumerate(series.items()):
        positions = [i + index * width for i in range(len(labels))]
        axes.bar(positions, values, width=width, label=label)
    axes.set_xticks([i + width * (len(series) - 1) / 2 for i in range(len(labels))], labels)
    axes.set_ylabel(unit)
    axes.set_title(title)
    axes.legend()
    figure.tight_layout()
    path = RESULTS / f"{name}.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"wrote {shown(path)}")
    return path


def percentile(samples: Sequence[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))]


def median(samples: Sequence[float]) -> float:
    return statistics.median(samples)


def advertisement_bodies(count: int, stamp: str = "2026-01-01T00:00:00.000001Z") -> list[dict[str, Any]]:
    return [
        {
            "registerId": uuid.uuid4().hex,
            "isPublic": True,
            "name": f"register-{n}",
            "description": "a public register used by the benchmark",
            "latestVersion": n,
            "latestDocketVersion": n,
            "isFullReplica": True,
            "sourceUpdatedAt": stamp,
        }
        for n in range(count)
    ]
