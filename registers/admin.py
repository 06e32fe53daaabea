from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest

from registers import services
from registers.models import Register


@admin.register(Register)
class RegisterAdmin(admin.ModelAdmin):
    list_display = ("name", "short_id", "advertise", "is_full_replica", "versions", "created_at", "updated_at")
    # Newest first, on a column shown, so the sort arrow says what the rows do (Django adds the id as a
    # tie-breaker; with the model's ("-created_at", "id") the arrow would sit on ID, ascending).
    ordering = ("-created_at",)
    list_filter = ("advertise", "is_full_replica")
    search_fields = ("name", "id")
    readonly_fields = ("id", "created_at", "updated_at")
    fields = (
        "id",
        "name",
        "description",
        "advertise",
        "is_full_replica",
        "latest_version",
        "latest_docket_version",
        "created_at",
        "updated_at",
    )
    actions = ("advertise_selected", "stop_advertising_selected")

    @admin.display(description="ID", ordering="id")
    def short_id(self, register: Register) -> str:
        return register.id[:8]

    @admin.display(description="Versions (register / docket)")
    def versions(self, register: Register) -> str:
        return f"{register.latest_version} / {register.latest_docket_version}"

    # Both actions change registers: staff with only the view permission must not see or run them.
    @admin.action(description="Advertise selected registers", permissions=("change",))
    def advertise_selected(self, request: HttpRequest, queryset: QuerySet[Register]) -> None:
        changed = services.set_advertise(queryset, advertise=True)
        self.message_user(request, f"{changed} register(s) now advertised.", messages.SUCCESS)

    @admin.action(description="Stop advertising selected registers", permissions=("change",))
    def stop_advertising_selected(self, request: HttpRequest, queryset: QuerySet[Register]) -> None:
        changed = services.set_advertise(queryset, advertise=False)
        self.message_user(request, f"{changed} register(s) no longer advertised.", messages.SUCCESS)


from registers import sync_state_admin  # noqa: E402,F401 - registers the read-only sync state page
