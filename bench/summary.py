"""One table of every bound of the tracker issue, read from the benches' JSON files in
bench/results/ (or BENCH_RESULTS_DIR): `make bench` prints it last. A bench whose file is
missing, or holds no bounds, shows as "no results". Each row carries its file's date: a file
left by an earlier run is not this run's figure.
"""

from __future__ import annotations

import json

from bench.common import BOUND_HEADERS, RESULTS, bound_row, print_table, shown

# The benches that check a bound, in the order `make bench` runs them.
BENCHES = ("full_sync", "restart", "memory", "latency", "burst", "network")


def rows() -> list[list[object]]:
    table: list[list[object]] = []
    for name in BENCHES:
        path = RESULTS / f"{name}.json"
        results = json.loads(path.read_text()) if path.exists() else {}
        bounds = results.get("bounds", [])
        if not bounds:
            table.append([name, "-", "no results", "-", "-", "-"])
        date = results.get("machine", {}).get("date", "-")
        table.extend([name, date, *bound_row(item)] for item in bounds)
    return table


def main() -> None:
    table = rows()
    print_table(f"Bounds of the tracker issue ({shown(RESULTS)})", ["bench", "date", *BOUND_HEADERS], table, 3)
    verdicts = [row[-1] for row in table]
    met, missed = verdicts.count("yes"), verdicts.count("NO")
    print(f"\n{met} of {len(verdicts)} bounds met, {missed} not met, {len(verdicts) - met - missed} not measured")


if __name__ == "__main__":
    main()
