"""The Sorcha node's Django project. The Celery app is loaded with it, so `@shared_task`s bind to it."""

from __future__ import annotations

from sorcha_site.celery import app as celery_app

__all__ = ("celery_app",)
