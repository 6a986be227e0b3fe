"""Celery tasks for channel upkeep: test all channels, refresh all balances.

Beat runs them every CHANNEL_TEST_FREQUENCY / CHANNEL_UPDATE_FREQUENCY minutes when set
(newapi_site/celery.py); GET /api/channel/test starts a manual run. One run of each at a time
across all processes (a Redis key, or a lock file in the embedded default).
"""

from __future__ import annotations

import logging
import os
import time

from celery import shared_task
from django.conf import settings

from billing import notifications
from newapi_site import redis as r

log = logging.getLogger("newapi.relay")
TEST_ALL_LOCK = "channel_test_all"
BALANCE_LOCK = "channel_balance_all"
LOCK_SECONDS = 3600


def _lock_file(name: str) -> str:
    return str(settings.DATA_DIR / f".{name}.lock")


def try_lock(name: str, ttl: int = LOCK_SECONDS) -> bool:
    if r.redis_enabled():
        return bool(r.sync_redis().set(r.key("lock", name), str(os.getpid()), nx=True, ex=ttl))
    path = _lock_file(name)
    try:
        if time.time() - os.path.getmtime(path) > ttl:
            os.unlink(path)  # a crashed run's stale lock
    except OSError:
        pass
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def release(name: str) -> None:
    if r.redis_enabled():
        r.sync_redis().delete(r.key("lock", name))
        return
    try:
        os.unlink(_lock_file(name))
    except OSError:
        pass


@shared_task(name="relay.test_all_channels", ignore_result=True)
def test_all_channels(locked: bool = False) -> int | None:
    """`locked`: the caller (the API view) already holds the lock for this run."""
    from relay.channels.tester import test_all_channels as run

    if not locked and not try_lock(TEST_ALL_LOCK):
        return None
    try:
        results = run()
    finally:
        release(TEST_ALL_LOCK)
    failed = [x for x in results if not x.success]
    log.info("channel test: %d tested, %d failed", len(results), len(failed))
    notifications.notify_channel_test_done()
    return len(results)


@shared_task(name="relay.update_all_balances", ignore_result=True)
def update_all_balances() -> int | None:
    from relay.channels.balance import update_all_balances as run

    if not try_lock(BALANCE_LOCK):
        return None
    try:
        return len(run())
    finally:
        release(BALANCE_LOCK)
