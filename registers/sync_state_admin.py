"""Read-only admin page of the AdvertisementSyncState: operators look, the full sync writes."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.http import HttpRequest

from registers.sync_state import AdvertisementSyncState


@admin.register(AdvertisementSyncState)
class AdvertisementSyncStateAdmin(admin.ModelAdmin):
    list_display = ("status", "reason", "last_attempt_at", "last_success_at", "registers_pushed")
    fieldsets = (
        (None, {"fields": ("status", "reason", "last_attempt_at", "last_success_at", "next_retry_at")}),
        (
            "Last successful full sync",
            {"fields": ("registers_pushed", "added", "updated", "removed", "unchanged", "held")},
        ),
        ("Failures", {"fields": ("consecutive_failures", "last_error")}),
    )

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        return [field.name for field in AdvertisementSyncState._meta.fields]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
