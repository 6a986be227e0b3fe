"""The Celery app. Broker: Redis when REDIS_CONN_STRING is set, else kombu's filesystem transport."""

from __future__ import annotations

import os

from celery import Celery
from celery.signals import worker_init, worker_process_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "newapi_site.settings")

app = Celery("newapi")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["billing", "relay", "tasks"])


def _task_poll_schedule() -> dict[str, dict]:
    """tasks-special.md §0.4: refresh unfinished Midjourney / Suno tasks every TASK_POLL_INTERVAL seconds
    (15 by default; off with UPDATE_TASK=false, checked by the tasks themselves)."""
    from django.conf import settings

    every = max(float(settings.TASK_POLL_INTERVAL), 0.5)
    return {
        # scheduled: one poll per interval across every node's beat (tasks/tasks.py)
        "poll-midjourney": {
            "task": "tasks.poll_midjourney",
            "schedule": every,
            "kwargs": {"scheduled": True},
        },
        "poll-suno": {"task": "tasks.poll_suno", "schedule": every, "kwargs": {"scheduled": True}},
    }


app.conf.beat_schedule = _task_poll_schedule()


def _channel_upkeep_schedule() -> dict[str, dict]:
    """tasks-special.md §9.4/§9.5: periodic channel tests and balance refreshes, when configured (minutes)."""
    from django.conf import settings

    schedule: dict[str, dict] = {}
    if settings.CHANNEL_TEST_FREQUENCY:
        schedule["test-all-channels"] = {
            "task": "relay.test_all_channels",
            "schedule": settings.CHANNEL_TEST_FREQUENCY * 60.0,
        }
    if settings.CHANNEL_UPDATE_FREQUENCY:
        schedule["update-all-balances"] = {
            "task": "relay.update_all_balances",
            "schedule": settings.CHANNEL_UPDATE_FREQUENCY * 60.0,
        }
    return schedule


app.conf.beat_schedule.update(_channel_upkeep_schedule())
# Log retention: rows older than the LogRetentionDays option are deleted once a day (0 keeps them).
app.conf.beat_schedule["prune-logs"] = {"task": "billing.prune_logs", "schedule": 24 * 3600.0}
# Periodic token budgets: a new period is noticed within a minute (billing/budgets.py).
app.conf.beat_schedule["reset-budgets"] = {"task": "billing.reset_budgets", "schedule": 60.0}


@worker_init.connect
@worker_process_init.connect
def _listen_for_invalidations(**_kwargs) -> None:
    """Subscribe before any task caches options or rows (each forked pool child again)."""
    from newapi_site import bus

    bus.ensure_listener()
