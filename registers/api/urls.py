"""Routes of the Register API, included by `sorcha_site/urls.py` under `api/`."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver
from rest_framework.routers import SimpleRouter

from registers.api.views import RegisterViewSet


class OptionalSlashRouter(SimpleRouter):
    """Serves `/api/registers` and `/api/registers/` alike (SimpleRouter only takes a bool)."""

    def __init__(self) -> None:
        super().__init__()
        self.trailing_slash = "/?"


router = OptionalSlashRouter()
router.register("registers", RegisterViewSet, basename="register")

urlpatterns: list[URLPattern | URLResolver] = list(router.urls)
