"""The node's Celery app: `celery -A sorcha_site worker` and `celery -A sorcha_site beat`.

Settings come from Django's settings under the `CELERY_` namespace; tasks are found in the
`tasks` module of each installed app.
"""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sorcha_site.settings")

app = Celery("sorcha_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
