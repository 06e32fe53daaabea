"""Bearer-token authentication for service-to-service and operator calls."""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from rest_framework import authentication, exceptions, permissions
from rest_framework.request import Request


class ServiceUser(AnonymousUser):
    """The caller holding SORCHA_SERVICE_TOKEN: authenticated, but no database user."""

    username = "sorcha-service"  # type: ignore[assignment]

    @property
    def is_anonymous(self) -> bool:  # type: ignore[override]
        return False

    @property
    def is_authenticated(self) -> bool:  # type: ignore[override]
        return True

    def __str__(self) -> str:
        return self.username


def token_matches(presented: str) -> bool:
    """Compare in constant time; an unset token never matches."""
    expected = settings.SORCHA_SERVICE_TOKEN
    if not expected:
        return False
    return hmac.compare_digest(presented.encode(), expected.encode())


class ServiceTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[ServiceUser, str] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, presented = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        presented = presented.strip()
        if not presented or not token_matches(presented):
            raise exceptions.AuthenticationFailed("Invalid bearer token.")
        return ServiceUser(), presented

    def authenticate_header(self, request: Request) -> str:
        return self.keyword


class IsServiceOrStaff(permissions.BasePermission):
    """Operator and write actions: the service token or a staff user; a plain user may only read."""

    message = "This action needs the service token or a staff user."

    def has_permission(self, request: Request, view: Any) -> bool:
        user = request.user
        return isinstance(user, ServiceUser) or bool(user and user.is_authenticated and user.is_staff)
