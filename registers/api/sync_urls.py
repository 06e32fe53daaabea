"""Routes of the sync state and history, included under `api/` before the register router."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from registers.api.sync_history import SyncHistoryView
from registers.api.sync_state import SyncStateView

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^registers/sync-state/?$", SyncStateView.as_view(), name="register-sync-state"),
    re_path(r"^registers/sync-history/?$", SyncHistoryView.as_view(), name="register-sync-history"),
]
