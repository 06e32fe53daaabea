"""Admin for the Peer Service: the Peer Network page (the django-rq pattern).

`PeerNetwork` has no table; its ModelAdmin's changelist renders a page whose data a small
script fetches from the node's JSON APIs with the admin's session. The page never reads
the Register Service's models: `peers` must not import `registers`, because the two
services are deployed separately.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.db.models import Model, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import NoReverseMatch, URLPattern, get_script_prefix, path, reverse

from peers import peer_actions
from peers.models import OriginSet, Peer, PeerNetwork
from peers.store.model import format_micros

# Tabs in page order: (fragment id, label).
PEER_NETWORK_TABS = (
    ("available", "Available Registers"),
    ("peers", "Peers"),
    ("sync", "Sync Status"),
)
# How often the page fetches its data again, in milliseconds; `?refresh=` may ask for 500 ms or more.
DEFAULT_REFRESH_MS = 5000
MIN_REFRESH_MS = 500


def api_urls() -> dict[str, str]:
    """Absolute paths of the APIs the page reads, under whatever prefix the site is mounted at."""
    api = f"{get_script_prefix()}api/"
    return {
        "available": f"{api}registers/available",
        "store_status": f"{api}store/status",
        "peers": f"{api}peers/",
        "sync_state": f"{api}registers/sync-state",
        "sync_history": f"{api}registers/sync-history",
        "pool_history": f"{api}store/pool-history",
        "resync": f"{api}registers/resync",
    }


def refresh_interval_ms(request: HttpRequest) -> int:
    raw = request.GET.get("refresh", "")
    try:
        return max(MIN_REFRESH_MS, int(raw))
    except ValueError:
        return DEFAULT_REFRESH_MS


@admin.register(PeerNetwork)
class PeerNetworkAdmin(admin.ModelAdmin):
    """Renders the Peer Network page in place of a changelist: it lists nothing from the database."""

    page_template = "admin/peers/peer_network/page.html"

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        user = request.user
        return bool(user.is_active and user.is_staff and super().has_view_permission(request, obj))

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def get_urls(self) -> list[URLPattern]:
        # Only the page: the default change and history views would query a table that does not exist.
        info = (self.opts.app_label, self.opts.model_name)
        return [path("", self.admin_site.admin_view(self.changelist_view), name=f"{info[0]}_{info[1]}_changelist")]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        context = {
            **self.admin_site.each_context(request),
            "title": "Peer network",
            "subtitle": None,
            "opts": self.opts,
            "app_label": self.opts.app_label,
            "tabs": PEER_NETWORK_TABS,
            "api": api_urls(),
            "refresh_ms": refresh_interval_ms(request),
            "serves_peers": settings.SERVES_PEERS,
            "serves_registers": settings.SERVES_REGISTERS,
            "node_name": settings.NODE_NAME,
            "registers_admin_url": registers_admin_url(),
            **(extra_context or {}),
        }
        request.current_app = self.admin_site.name
        return TemplateResponse(request, self.page_template, context)


def registers_admin_url() -> str:
    """The Registers admin, linked from the empty state; looked up by URL name, not by import."""
    try:
        return reverse("admin:registers_register_changelist")
    except NoReverseMatch:
        return ""


@admin.register(Peer)
class PeerAdmin(admin.ModelAdmin):
    """The peers this node knows, with the operator's actions: approve, ban, unban, forget.

    Rows are made by gossip, never by hand; an operator changes them only through the actions
    (the same functions the API's operator endpoints call).
    """

    list_display = ("__str__", "peer_id", "url", "claimed_url", "status", "is_seed", "approved", "banned", "last_seen")
    list_filter = ("banned", "approved", "is_seed", "last_exchange_result")
    search_fields = ("peer_id", "name", "url", "claimed_url")
    readonly_fields = [field.name for field in Peer._meta.fields]
    actions = ("approve", "ban", "unban", "forget")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # "forget" also drops the peer's advertisements

    @admin.display(description="status")
    def status(self, peer: Peer) -> str:
        return peer.status

    @admin.action(description="Approve (admit in allowlist mode; never evicted)", permissions=["change"])
    def approve(self, request: HttpRequest, queryset: QuerySet[Peer]) -> None:
        for peer in queryset:
            peer_actions.set_approved(peer)
        self.message_user(request, f"Approved {len(queryset)} peer(s).", messages.SUCCESS)

    @admin.action(description="Ban (hide their advertisements, refuse their exchanges)", permissions=["change"])
    def ban(self, request: HttpRequest, queryset: QuerySet[Peer]) -> None:
        for peer in queryset:
            peer_actions.set_banned(peer, True)
        self.message_user(request, f"Banned {len(queryset)} peer(s).", messages.SUCCESS)

    @admin.action(description="Unban", permissions=["change"])
    def unban(self, request: HttpRequest, queryset: QuerySet[Peer]) -> None:
        for peer in queryset:
            peer_actions.set_banned(peer, False)
        self.message_user(request, f"Unbanned {len(queryset)} peer(s).", messages.SUCCESS)

    @admin.action(description="Forget (drop the row and its advertisements)", permissions=["change"])
    def forget(self, request: HttpRequest, queryset: QuerySet[Peer]) -> None:
        peers = list(queryset)
        for peer in peers:
            peer_actions.forget(peer)
        self.message_user(request, f"Forgot {len(peers)} peer(s).", messages.SUCCESS)


@admin.register(OriginSet)
class OriginSetAdmin(admin.ModelAdmin):
    """The signed advertisement sets this node holds, one per origin (its own included), as relayed to it.

    Banning an origin drops its set and refuses it whoever relays it; it works for origins known only
    through relays, which have no peer row.
    """

    list_display = ("__str__", "origin_id", "url", "sequence", "advertisements", "expires", "received_from", "banned")
    list_filter = ("banned",)
    search_fields = ("origin_id", "name", "url")
    readonly_fields = [field.name for field in OriginSet._meta.fields if field.name not in ("body", "signature")]
    exclude = ("body", "signature")
    actions = ("ban", "unban")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False  # a set comes back from the next relay: ban it instead

    @admin.display(description="expires")
    def expires(self, origin: OriginSet) -> str:
        return format_micros(origin.expires_at_ms * 1000) or "" if origin.expires_at_ms else ""

    @admin.action(description="Ban (drop the set, refuse it whoever relays it)", permissions=["change"])
    def ban(self, request: HttpRequest, queryset: QuerySet[OriginSet]) -> None:
        origins = list(queryset.values_list("origin_id", flat=True))
        for origin_id in origins:
            peer_actions.ban_origin(origin_id)
        self.message_user(request, f"Banned {len(origins)} origin(s).", messages.SUCCESS)

    @admin.action(description="Unban", permissions=["change"])
    def unban(self, request: HttpRequest, queryset: QuerySet[OriginSet]) -> None:
        origins = list(queryset.values_list("origin_id", flat=True))
        for origin_id in origins:
            peer_actions.unban_origin(origin_id)
        self.message_user(request, f"Unbanned {len(origins)} origin(s).", messages.SUCCESS)
