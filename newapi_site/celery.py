"""The Celery app. Broker: Redis when REDIS_CONN_STRING is set, else kombu's filesystem transport."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newapi_site.settings")

app = Celery("newapi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["billing", "relay", "tasks"])
app.conf.beat_schedule = {}
