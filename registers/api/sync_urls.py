"""Route of the sync state, included under `api/` before the register router."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, re_path

from registers.api.sync_state import SyncStateView

urlpatterns: list[URLPattern | URLResolver] = [
    re_path(r"^registers/sync-state/?$", SyncStateView.as_view(), name="register-sync-state"),
]
