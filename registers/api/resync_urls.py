"""Route of the operator's resync request, included under `api/` before the register routes."""

from __future__ import annotations

from django.urls import URLPattern, re_path

from registers.api.resync import ResyncView

urlpatterns: list[URLPattern] = [
    re_path(r"^registers/resync/?$", ResyncView.as_view(), name="registers-resync"),
]
