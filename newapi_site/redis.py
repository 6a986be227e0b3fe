"""The shared Redis clients (sync for services and signals, asyncio for the relay hot path).

None of these exist when REDIS_CONN_STRING is empty: callers check `redis_enabled()`.
"""

from __future__ import annotations

import asyncio
import weakref

import redis
import redis.asyncio as aredis
from django.conf import settings

_sync_client: redis.Redis | None = None
_async_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, aredis.Redis] = (
    weakref.WeakKeyDictionary()
)


def redis_enabled() -> bool:
    return bool(settings.REDIS_CONN_STRING)


def key(*parts: object) -> str:
    return ":".join([settings.REDIS_KEY_PREFIX, *map(str, parts)])


def sync_redis() -> redis.Redis:
    global _sync_client
    if _sync_client is None:
        _sync_client = redis.Redis.from_url(settings.REDIS_CONN_STRING, decode_responses=False)
    return _sync_client


def async_redis() -> aredis.Redis:
    """One asyncio client per event loop (Daphne has one; tests may have several)."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        # A blocking pool: a burst of requests waits for a free connection instead of failing
        # with "Too many connections" (seen at 500 concurrent streams per worker).
        pool = aredis.BlockingConnectionPool.from_url(
            settings.REDIS_CONN_STRING, max_connections=max(settings.REDIS_POOL_SIZE or 0, 64), timeout=30
        )
        client = aredis.Redis(connection_pool=pool, decode_responses=False)
        _async_clients[loop] = client
    return client


def pipelined():
    """The loop's pipelined connection for the relay's per-request ledger scripts."""
    from .redis_pipe import pipelined as get

    return get(settings.REDIS_CONN_STRING)
