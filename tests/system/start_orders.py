"""The start orders SC-006 runs: a seeded sample of 8 of the 24 orders of the four services, or all 24.

`SORCHA_START_ORDER_SEED=<n>` repeats a sample; `SORCHA_ALL_START_ORDERS=1` runs every order.
The seed is in each test's id and in the run's summary.
"""

from __future__ import annotations

import itertools
import os
import random

from tests.system.harness import SERVICES

SAMPLE_SIZE = 8
ALL_ORDERS = list(itertools.permutations(SERVICES))

if os.environ.get("SORCHA_ALL_START_ORDERS") == "1":
    SEED: int | None = None
    ORDERS = ALL_ORDERS
else:
    SEED = int(os.environ.get("SORCHA_START_ORDER_SEED") or random.SystemRandom().randrange(1_000_000))
    ORDERS = random.Random(SEED).sample(ALL_ORDERS, SAMPLE_SIZE)

# Set by the SC-006 test when it runs, so the summary names the seed only then.
SAMPLED = False


def order_id(order: tuple[str, ...]) -> str:
    prefix = f"seed{SEED}-" if SEED is not None else ""
    return prefix + ">".join(order)
