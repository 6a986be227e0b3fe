"""Celery tasks: the 15-second pollers for Midjourney and Suno (beat schedule in newapi_site/celery.py)."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from newapi_site import redis as r

from . import polling

LOCK_SECONDS = 120


def _single_flight(name: str, fn, scheduled: bool = False) -> dict[str, int] | None:
    """One poller at a time across workers; the conditional UPDATEs keep overlaps harmless anyway."""
    if not settings.UPDATE_TASK:
        return None
    if not r.redis_enabled():
        return fn()
    client = r.sync_redis()
    # Every node's beat sends this task each interval: the first to claim the interval polls, the
    # others skip, so N nodes poll the upstream once per interval, not N times.
    claim_ms = max(int(settings.TASK_POLL_INTERVAL * 800), 100)
    if scheduled and not client.set(r.key("tick", name), b"1", nx=True, px=claim_ms):
        return None
    lock = client.lock(r.key("lock", name), timeout=LOCK_SECONDS, blocking=False)
    if not lock.acquire(blocking=False):
        return None
    try:
        return fn()
    finally:
        try:
            lock.release()
        except Exception:  # expired while we worked: nothing to release
            pass


@shared_task(name="tasks.poll_midjourney", ignore_result=False)
def poll_midjourney(scheduled: bool = False) -> dict[str, int] | None:
    return _single_flight("poll_midjourney", polling.poll_midjourney, scheduled)


@shared_task(name="tasks.poll_suno", ignore_result=False)
def poll_suno(scheduled: bool = False) -> dict[str, int] | None:
    return _single_flight("poll_suno", polling.poll_suno, scheduled)
