"""The beat's pool sample, run by a real Celery worker on the node's queues."""

from __future__ import annotations

import pytest

from peers.models import PoolSample
from peers.store import AdvertisementInput, AdvertisementStore
from sorcha_site.celery import app as celery_app
from tasks.schedule import PEERS_SAMPLE_POOL
from tests.conftest import register_id
from tests.helpers import wait_until

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_worker_samples_the_pools_size_when_the_beat_asks(peer_store: AdvertisementStore, worker: object) -> None:
    # given
    for name in ("north", "south", "east"):
        peer_store.advertise(AdvertisementInput(register_id(), True, name=name))

    # when
    celery_app.send_task(PEERS_SAMPLE_POOL)

    # then
    sample = wait_until(lambda: PoolSample.objects.first(), timeout=15, message="a pool sample")
    assert (sample.local, sample.remote) == (3, 0)
