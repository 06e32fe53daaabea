"""The API answers as its OpenAPI schema says: schemathesis fuzzes every operation with every check.

The schema is the one `/api/schema/` serves; the requests go to a live server over HTTP, with the
session's private Redis and test database (tests/plugin.py), never the machine's shared Redis.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import hypothesis
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase
from hypothesis import strategies as st
from schemathesis.checks import CHECKS, load_all_checks

from peers.store import AdvertisementStore
from tests.constants import SERVICE_TOKEN
from tests.contract.served import served_schema
from tests.plugin import SESSION_REDIS

pytestmark = pytest.mark.django_db(transaction=True)

EXCHANGE = "/api/peers/exchange/"
BULK_ADVERTISE = "/api/registers/bulk-advertise/"
RECONCILE = "/api/registers/reconcile/"

load_all_checks()
CONFIG: dict[str, Any] = {
    "seed": 20261125,
    "auth": {"openapi": {"serviceToken": {"bearer": SERVICE_TOKEN}}},
    # Every check schemathesis has, named one by one so none is left to a default.
    "checks": {"enabled": True, **{name: {"enabled": True} for name in CHECKS.get_all_names()}},
    "generation": {"mode": "all", "deterministic": True},
    "phases": {"examples": {"enabled": True}, "coverage": {"enabled": True}, "fuzzing": {"enabled": True}},
    "operations": [
        # No generated message can carry a valid Ed25519 signature, so no schema-valid exchange can ever
        # be accepted: only invalid ones are generated. tests/contract/test_exchange_contract.py checks
        # the documented answers of real signed messages.
        {"include-path": EXCHANGE, "generation": {"mode": "negative"}},
    ],
}

# The API takes timestamps from 2000-01-01 to its own clock plus CLOCK_SKEW_MAX (a bound a JSON
# Schema cannot state, so the operations' descriptions do); valid ones are generated in that window.
schemathesis.openapi.format(
    "date-time",
    st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime.now() - timedelta(days=1), timezones=st.just(UTC)
    ).map(lambda moment: moment.isoformat().replace("+00:00", "Z")),
)


schema = schemathesis.openapi.from_dict(served_schema(), config=schemathesis.Config.from_dict(CONFIG))


@schema.hook("filter_case")
def distinct_register_ids(context: schemathesis.HookContext, case: schemathesis.Case) -> bool:
    """What the descriptions say and a JSON Schema cannot: a bulk or digest body names each register once;
    a digest gives one stamp per register, none ahead of the clock."""
    if not isinstance(case.body, dict):
        return True
    if case.operation.path == BULK_ADVERTISE:
        items = case.body.get("advertisements")
        if not isinstance(items, list):
            return True
        ids = [item.get("registerId") for item in items if isinstance(item, dict) and "registerId" in item]
        return len(ids) == len({str(register_id) for register_id in ids})
    if case.operation.path == RECONCILE:
        ids, stamps = case.body.get("registerIds"), case.body.get("sourceUpdatedAt")
        if not isinstance(ids, list) or not isinstance(stamps, list):
            return True
        now = int(datetime.now(tz=UTC).timestamp() * 1_000_000)
        in_window = all(not isinstance(stamp, int) or stamp <= now for stamp in stamps)
        return len(ids) == len(stamps) and len(ids) == len({str(register_id) for register_id in ids}) and in_window
    return True


@pytest.fixture
def private_services_only(settings: Any) -> None:
    """The live server's Redis and broker are the session's private redis-server, never the machine's."""
    assert urlparse(settings.REDIS_URL).port == SESSION_REDIS.port
    assert urlparse(settings.CELERY_BROKER_URL).port == SESSION_REDIS.port


@hypothesis.settings(
    max_examples=15,
    phases=[Phase.explicit, Phase.generate],
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=list(HealthCheck),
)
@schema.parametrize()
def test_every_operation_answers_as_its_schema_says(
    case: schemathesis.Case, live_server: Any, peer_store: AdvertisementStore, private_services_only: None
) -> None:
    case.call_and_validate(base_url=live_server.url)
