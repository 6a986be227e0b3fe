"""Drains queued settlements (RedisLedger) into the database in batches, off the response path.

Each gateway process runs `run_forever` as a background task, unless `manage.py serve` drains
for its workers in the parent (`drain_forever`, BILLING_DRAIN_IN_WORKER=false); `drain_now` is
also called at process exit (atexit) and by tests. Popping is atomic in Redis, so several
processes can drain side by side; a batch whose database write fails is pushed back and retried.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading

from asgiref.sync import sync_to_async
from django.conf import settings

from newapi_site import redis as r

from .ledger import queue_key
from .settlement import Settlement, apply_settlements

log = logging.getLogger("newapi.billing")
BATCH = 500

# Pop a batch and count it as in flight (so `wait_idle` knows a write is still under way).
_POP = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('INCRBY', KEYS[2], #items)
end
return items
"""


def _inflight_key() -> str:
    return r.key("billing", "inflight")


def drain_now() -> int:
    """Write every queued settlement to the database; returns how many were written."""
    if not r.redis_enabled():
        return 0
    client = r.sync_redis()
    total = 0
    while True:
        raw = client.eval(_POP, 2, queue_key(), _inflight_key(), BATCH)
        if not raw:
            return total
        try:
            apply_settlements([Settlement.from_json(item) for item in raw])
        except Exception:
            client.rpush(queue_key(), *raw)
            log.exception("billing batch failed; %d settlements re-queued", len(raw))
            raise
        finally:
            client.decrby(_inflight_key(), len(raw))
        total += len(raw)


def wait_idle(timeout: float = 10.0) -> None:
    """Drain, then wait until no other process is still writing a batch (tests, shutdown)."""
    if not r.redis_enabled():  # the embedded ledger: its owner writes the journal out
        from .local_ledger import flush

        flush()
        return
    import time

    deadline = time.monotonic() + timeout
    while True:
        drain_now()
        if not r.redis_enabled() or int(r.sync_redis().get(_inflight_key()) or 0) <= 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("billing writes still in flight")
        time.sleep(0.02)


async def run_forever() -> None:
    interval = max(settings.BATCH_UPDATE_INTERVAL, 0.05)
    while True:
        await asyncio.sleep(interval)
        try:
            await sync_to_async(drain_now)()
        except Exception:
            log.exception("billing drain failed")


def drain_forever(stop: threading.Event) -> None:
    """The serve parent's writer thread: drain every BATCH_UPDATE_INTERVAL until `stop`, then once more."""
    from django.db import close_old_connections, connection

    interval = max(settings.BATCH_UPDATE_INTERVAL, 0.05)
    while True:
        stopping = stop.wait(interval)
        try:
            close_old_connections()
            drain_now()
        except Exception:
            log.exception("billing drain failed")
            connection.close()  # a broken connection is reopened on the next round
        if stopping:
            return


_started = False


def start_background_writer() -> None:
    """Start the drain loop in this process once (called on the first relay request)."""
    global _started
    if _started or not r.redis_enabled():
        return
    _started = True
    if settings.BILLING_DRAIN_IN_WORKER:
        asyncio.get_running_loop().create_task(run_forever())
    atexit.register(_drain_at_exit)


def _drain_at_exit() -> None:
    try:
        drain_now()
    except Exception:
        log.exception("billing drain at exit failed")
