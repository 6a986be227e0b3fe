"""Drains queued settlements (RedisLedger) into the database in batches, off the response path.

Each gateway process runs `run_forever` as a background task, unless `manage.py serve` drains
for its workers in the parent (`drain_forever`, BILLING_DRAIN_IN_WORKER=false); `drain_now` is
also called at process exit (atexit) and by tests. Several processes can drain side by side.

Nothing popped is lost to a crash: one Lua script moves a batch from the queue to a processing
list of its own and registers it (owner, time) in a hash; the list is deleted only after the
database committed the batch. A batch still registered is written again by its owner on its next
round, by anyone once its owner has been silent for STALE_SECONDS, and by `manage.py serve` at
start-up. Each settlement's id is recorded with it (billing/idempotent.py), so writing a batch
again never bills twice. A row the database rejects is dead-lettered (BILLING_DEAD_LETTER list,
one log line each) and the rest of its batch is billed.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
import time
import uuid
from typing import cast

import orjson
from asgiref.sync import sync_to_async
from django.conf import settings

from newapi_site import redis as r

from .ledger import queue_key, sweep_holds
from .settlement import Settlement

log = logging.getLogger("newapi.billing")
BATCH = 500
STALE_SECONDS = 60.0  # a registered batch this old has lost its writer (a batch takes well under 1 s)
KEEP_APPLIED_SECONDS = 3600.0  # applied ids kept at least this long (and while a batch may hold them)
PRUNE_EVERY = 60.0
SWEEP_EVERY = 2.0  # seconds between looks for expired quota holds

# Move up to ARGV[1] settlements from the queue to this batch's processing list and register it.
_POP = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
  redis.call('LTRIM', KEYS[1], #items, -1)
  redis.call('RPUSH', KEYS[2], unpack(items))
  redis.call('HSET', KEYS[3], ARGV[2], ARGV[3])
end
return items
"""

# Take over a registered batch unless someone else did since we looked.
_CLAIM = """
if redis.call('HGET', KEYS[1], ARGV[1]) == ARGV[2] then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[3])
  return 1
end
return 0
"""


def _registry_key() -> str:
    return r.key("billing", "batches")


def _batch_key(batch_id: str) -> str:
    return r.key("billing", "batch", batch_id)


def dead_letter_key() -> str:
    return r.key("billing", "dead")


def dead_letter_count() -> int:
    """Settlements the database rejected even alone (each also logged): the Redis list, or without
    Redis the embedded journal's table."""
    if r.redis_enabled():
        return int(r.sync_redis().llen(dead_letter_key()))
    from .models import DeadSettlement

    return DeadSettlement.objects.count()


_owner = uuid.uuid4().hex


def _stamp() -> str:
    return f"{_owner} {time.time():.3f}"


def _apply_batch(client, batch_id: str, raw: list[bytes]) -> int:
    """Write one registered batch and unregister it; returns how many settlements it held."""
    from .idempotent import apply_isolated, log_rejected

    settlements: list[Settlement] = []
    dead: list[bytes] = []
    for i, item in enumerate(raw):
        try:
            s = Settlement.from_json(item)
        except Exception as exc:
            dead.append(_dead_letter(batch_id, item, f"unreadable: {exc}"))
            continue
        if not s.id:  # queued by an older version: an id stable across re-applies of this batch
            s.id = f"{batch_id}:{i}"
        settlements.append(s)
    for s, err in apply_isolated(settlements):  # raises while the database is unreachable
        dead.append(_dead_letter(batch_id, s.to_json(), str(err)))
        log_rejected(s, err)
    pipe = client.pipeline(transaction=True)
    if dead:
        pipe.rpush(dead_letter_key(), *dead)
    pipe.delete(_batch_key(batch_id))
    pipe.hdel(_registry_key(), batch_id)
    pipe.execute()
    return len(raw)


def _dead_letter(batch_id: str, item: bytes, error: str) -> bytes:
    return orjson.dumps(
        {
            "at": int(time.time()),
            "batch": batch_id,
            "error": error[:500],
            "settlement": item.decode("utf-8", "replace"),
        }
    )


def _retry_registered(client, everything: bool) -> int:
    """Write the batches still registered that are ours (a failed round), stale, or all of them."""
    total = 0
    now = time.time()
    for batch_id, value in client.hgetall(_registry_key()).items():
        owner, _, when = value.decode().partition(" ")
        if not (everything or owner == _owner or now - float(when or 0) > STALE_SECONDS):
            continue
        if not client.eval(_CLAIM, 1, _registry_key(), batch_id, value, _stamp()):
            continue
        batch_id = batch_id.decode()
        if owner != _owner:
            log.warning("billing: writing batch %s left in processing by another writer", batch_id)
        total += _apply_batch(client, batch_id, client.lrange(_batch_key(batch_id), 0, -1))
    return total


def drain_now(recover: bool = False) -> int:
    """Write every queued settlement to the database; returns how many were written.
    recover=True also takes over every batch left in processing (start-up after a crash)."""
    if not r.redis_enabled():
        return 0
    client = r.sync_redis()
    total = _retry_registered(client, recover)
    while True:
        batch_id = uuid.uuid4().hex
        raw = client.eval(
            _POP, 3, queue_key(), _batch_key(batch_id), _registry_key(), BATCH, batch_id, _stamp()
        )
        if not raw:
            return total
        total += _apply_batch(client, batch_id, raw)


_last_prune = _last_sweep = 0.0


def tick() -> int:
    """One round of a background writer: drain, refund expired holds, forget old applied ids."""
    global _last_prune, _last_sweep
    total = drain_now()
    now = time.time()
    if now - _last_sweep > SWEEP_EVERY:
        _last_sweep = now
        sweep_holds()
    if now - _last_prune > PRUNE_EVERY:
        _last_prune = now
        _prune(now)
    return total


def _prune(now: float) -> None:
    from .idempotent import prune_applied

    horizon = now - KEEP_APPLIED_SECONDS
    for value in r.sync_redis().hvals(_registry_key()):
        when = float(cast(bytes, value).decode().partition(" ")[2] or 0)
        horizon = min(horizon, when - 300)  # ids written for a batch still registered stay
    prune_applied(horizon)


def wait_idle(timeout: float = 10.0) -> None:
    """Drain, then wait until no other process is still writing a batch (tests, shutdown)."""
    if not r.redis_enabled():  # the embedded ledger: its owner writes the journal out
        from .local_ledger import flush

        flush()
        return
    deadline = time.monotonic() + timeout
    while True:
        drain_now()
        if not r.redis_enabled() or int(r.sync_redis().hlen(_registry_key())) <= 0:
            return
        if time.monotonic() > deadline:
            raise TimeoutError("billing writes still in flight")
        time.sleep(0.02)


async def run_forever() -> None:
    interval = max(settings.BATCH_UPDATE_INTERVAL, 0.05)
    while True:
        await asyncio.sleep(interval)
        try:
            await sync_to_async(tick)()
        except Exception:
            log.exception("billing drain failed")


def drain_forever(stop: threading.Event) -> None:
    """The serve parent's writer thread: first take over whatever a crash left in processing,
    then drain every BATCH_UPDATE_INTERVAL until `stop`, then once more."""
    from django.db import close_old_connections, connection

    interval = max(settings.BATCH_UPDATE_INTERVAL, 0.05)
    recovered = False
    stopping = False
    while True:
        try:
            close_old_connections()
            if not recovered:
                count = _retry_registered(r.sync_redis(), everything=True)
                recovered = True
                if count:
                    log.warning(
                        "billing: %d settlements left in processing by a crash written at start-up", count
                    )
            tick()
        except Exception:
            log.exception("billing drain failed")
            connection.close()  # a broken connection is reopened on the next round
        if stopping:
            return
        stopping = stop.wait(interval)


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
