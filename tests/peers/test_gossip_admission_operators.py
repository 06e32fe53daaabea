"""The gossip door seen by operators (issue 11): who may act on peers, the admin's peer list, the metrics
of refusals and peers, and metrics and gossip kept independent of each other.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest
from django.contrib.auth.models import User
from rest_framework.test import APIClient

from peers.models import Peer
from peers.store import AdvertisementStore
from tests.peers.fake_peers import FakeNode, long_ago, remote_ad
from tests.peers.gossip_door import (
    generous_rates,  # noqa: F401  (autouse: imported, it applies to this module)
    metric_samples,
    send,
)

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parents[2]


# ---------------------------------------------------------------- authorization
@pytest.mark.parametrize("action", ["ban", "unban", "approve", "forget"])
def test_a_plain_user_may_read_peers_but_not_act_on_them(peer_store: AdvertisementStore, action: str) -> None:
    peer = Peer.objects.create(url="http://someone.example")
    client = APIClient()
    client.force_authenticate(User.objects.create_user("reader", password="x"))

    assert client.get("/api/peers/").status_code == 200
    assert client.post(f"/api/peers/{peer.pk}/{action}").status_code == 403
    assert client.post("/api/peers/round").status_code == 403
    assert Peer.objects.filter(pk=peer.pk, banned=False, approved=False).exists()


def test_staff_and_the_service_token_may_act_on_peers(peer_store: AdvertisementStore, api: APIClient) -> None:
    node = FakeNode()
    send(node, [remote_ad()])
    peer = Peer.objects.get(peer_id=node.peer_id)
    staff = APIClient()
    staff.force_authenticate(User.objects.create_user("operator", password="x", is_staff=True))

    assert staff.post(f"/api/peers/{peer.pk}/approve").json()["approved"] is True
    assert staff.post(f"/api/peers/{peer.pk}/ban").json()["status"] == "banned"
    assert api.post(f"/api/peers/{peer.pk}/unban").json()["banned"] is False
    assert api.post(f"/api/peers/{peer.pk}/forget").status_code == 204
    assert not Peer.objects.filter(pk=peer.pk).exists()
    assert peer_store.available() == []


def test_the_admin_changelist_lists_peers_and_bans_them_by_action(
    peer_store: AdvertisementStore, admin_client: Any
) -> None:
    node = FakeNode()
    send(node, [remote_ad()])
    peer = Peer.objects.get(peer_id=node.peer_id)

    assert node.peer_id in admin_client.get("/admin/peers/peer/").content.decode()
    response = admin_client.post("/admin/peers/peer/", {"action": "ban", "_selected_action": [peer.pk]})

    assert response.status_code == 302
    assert Peer.objects.get(pk=peer.pk).banned
    assert peer_store.available() == []


# ---------------------------------------------------------------- metrics and case 7
def test_metrics_show_refusals_by_reason_peers_by_status_and_remote_ads_held(
    peer_store: AdvertisementStore, api: APIClient
) -> None:
    node = FakeNode()
    send(node, [remote_ad(), remote_ad()])
    send(FakeNode(), [], sentAt=long_ago(3600))

    samples = metric_samples(api)

    assert samples[("sorcha_gossip_refusals_total", (("reason", "stale_sent_at"),))] >= 1
    assert samples[("sorcha_peers", (("status", "healthy"),))] == 1
    assert samples[("sorcha_peers", (("status", "pending"),))] == 0
    assert samples[("sorcha_remote_advertisements_held", ())] == 2


def imported_modules(path: Path) -> set[str]:
    """Every module a file imports, at any depth (function-level imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_metrics_and_gossip_do_not_import_each_other() -> None:
    metrics_imports = imported_modules(ROOT / "sorcha_site" / "metrics.py")
    gossip_side = [ROOT / "peers" / name for name in ("gossip/exchange.py", "admission.py", "outbound.py", "models.py")]

    assert not any(name == "peers.gossip" or name.startswith("peers.gossip.") for name in metrics_imports)
    assert not any(name in metrics_imports for name in ("peers.admission", "peers.outbound", "peers.gossip"))
    assert "sorcha_site.metrics" in imported_modules(gossip_side[0])
    for module in gossip_side[1:]:
        assert "sorcha_site.metrics" not in imported_modules(module)
