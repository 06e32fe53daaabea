from __future__ import annotations

from django.apps import AppConfig


class TasksConfig(AppConfig):
    name = "tasks"
    verbose_name = "Background tasks"

    def ready(self) -> None:
        # Connects the worker_ready handler that enqueues the startup full sync.
        from tasks import startup  # noqa: F401
