"""A URLconf holding only the Register API, mounted where the project mounts it."""

from __future__ import annotations

from django.urls import include, path

urlpatterns = [path("api/", include("registers.api.urls"))]
