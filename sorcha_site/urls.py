"""URL map. SORCHA_SERVICE decides which service's API this process mounts."""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path

from sorcha_site import docs, health, metrics, schema  # noqa: F401 - schema registers the bearer scheme with the docs

handler404 = "sorcha_site.api.page_not_found"

urlpatterns: list[URLPattern | URLResolver] = [
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
    path("metrics", metrics.MetricsView.as_view(), name="metrics"),
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
