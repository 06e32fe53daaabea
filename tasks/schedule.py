"""The beat schedule of a node (run exactly one beat process per node).

Every entry carries `expires`: a run that no worker has started within one period is
dropped instead of piling up while the workers are down; the next run does the same work.
"""

from __future__ import annotations

from typing import Any

from registers import task_names

PEERS_GOSSIP_ROUND = "peers.gossip_round"
PEERS_SAMPLE_POOL = "peers.sample_pool"
# The pool's size is sampled once a minute for the admin's chart (peers.history keeps a day of samples).
POOL_SAMPLE_INTERVAL = 60.0


def beat_schedule(
    *,
    serves_registers: bool,
    reconcile_interval: float,
    serves_peers: bool = False,
    gossip_interval: float = 150.0,
    push_check_interval: float = 5.0,
) -> dict[str, dict[str, Any]]:
    schedule: dict[str, dict[str, Any]] = {}
    if serves_registers:
        # Level-triggered repair: whatever drifted since the last full sync, this one fixes (FR-006).
        schedule["reconcile-advertisements"] = {
            "task": task_names.FULL_SYNC,
            "schedule": reconcile_interval,
            "kwargs": {"reason": "periodic"},
            "options": {"expires": reconcile_interval},
        }
        # Changes whose flush was lost on the way (a broker message, a failed-over Redis) go at once,
        # not at the next full sync.
        schedule["check-pushes"] = {
            "task": task_names.CHECK_PUSHES,
            "schedule": push_check_interval,
            "options": {"expires": push_check_interval},
        }
    if serves_peers:
        # Tell every peer our set (and hear theirs) so remote advertisements stay refreshed (user story 4).
        schedule["gossip-round"] = {
            "task": PEERS_GOSSIP_ROUND,
            "schedule": gossip_interval,
            "options": {"expires": gossip_interval},
        }
        schedule["sample-pool"] = {
            "task": PEERS_SAMPLE_POOL,
            "schedule": POOL_SAMPLE_INTERVAL,
            "options": {"expires": POOL_SAMPLE_INTERVAL},
        }
    return schedule
