"""The Celery app. Broker: Redis when REDIS_CONN_STRING is set, else kombu's filesystem transport."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newapi_site.settings")

app = Celery("newapi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["billing", "relay", "tasks"])
app.conf.beat_schedule = {
    # tasks-special.md §0.4: refresh unfinished Midjourney / Suno tasks (off with UPDATE_TASK=false).
    "poll-midjourney": {"task": "tasks.poll_midjourney", "schedule": 15.0},
    "poll-suno": {"task": "tasks.poll_suno", "schedule": 15.0},
}
