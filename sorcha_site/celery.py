"""The node's Celery app: `celery -A sorcha_site worker` and `celery -A sorcha_site beat`.

Settings come from Django's settings under the `CELERY_` namespace; tasks are found in the
`tasks` module of each installed app. Broker connections are `sorcha_site.broker.BrokerConnection`s, so a
worker that loses its Redis broker while holding a countdown task reconnects instead of exiting.
"""

from __future__ import annotations

import os

from celery import Celery

from sorcha_site.broker import BrokerAMQP

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "sorcha_site.settings")

app = Celery("sorcha_site", amqp=BrokerAMQP)
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
