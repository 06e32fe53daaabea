from __future__ import annotations

from django.apps import AppConfig


class RegistersConfig(AppConfig):
    name = "registers"
    verbose_name = "Register Service"

    def ready(self) -> None:
        from registers import pushes

        pushes.connect()
