from __future__ import annotations

from django.apps import AppConfig


class PeersConfig(AppConfig):
    name = "peers"
    verbose_name = "Peer Network"
