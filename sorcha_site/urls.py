"""URL map. SORCHA_SERVICE decides which service's API this process mounts."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path, re_path
from django.views.generic import RedirectView

from sorcha_site import docs, health, metrics, schema  # noqa: F401 - schema registers the bearer scheme with the docs

handler404 = "sorcha_site.api.page_not_found"

# The admin says what it is (the header, every page title and the login page), not "Django administration".
admin.site.site_header = "Sorcha node"
admin.site.site_title = "Sorcha node"
admin.site.index_title = "Sorcha node administration"

urlpatterns: list[URLPattern | URLResolver] = [
    # The operator's start page: the admin's Peer Network page (the admin asks for a login first).
    path("", RedirectView.as_view(pattern_name="admin:peers_peernetwork_changelist"), name="home"),
    # The slash rule (docs/api.md): machine endpoints answer with and without a trailing slash.
    re_path(r"^healthz/?$", health.healthz, name="healthz"),
    re_path(r"^readyz/?$", health.readyz, name="readyz"),
    re_path(r"^metrics/?$", metrics.MetricsView.as_view(), name="metrics"),
    path("admin/", admin.site.urls),
    path("api/schema/", docs.SchemaView.as_view(), name="schema"),
    path("api/docs/", docs.SwaggerView.as_view(url_name="schema"), name="api-docs"),
]

# The Peer API comes first: its fixed paths (available, bulk-advertise) must win over register ids.
if settings.SERVES_PEERS:
    urlpatterns.append(path("api/", include("peers.api.urls")))
if settings.SERVES_REGISTERS:
    urlpatterns.append(path("api/", include("registers.api.resync_urls")))
    urlpatterns.append(path("api/", include("registers.api.sync_urls")))
    urlpatterns.append(path("api/", include("registers.api.urls")))
