"""New API's global `/api` rate limit: GLOBAL_API_RATE_LIMIT requests per GLOBAL_API_RATE_LIMIT_DURATION
seconds per client IP, as a sliding window. Redis (shared by every node) when configured, else in memory.
Rejections are an empty HTTP 429 (see ApiView.handle_exception).
"""

from __future__ import annotations

import threading
import time
from collections import deque

from django.conf import settings
from rest_framework.throttling import BaseThrottle

from newapi_site import redis as r
from newapi_site.client_ip import from_request as client_ip_of

# Atomic check-and-record: drop stamps older than the window, then admit if under the limit.
_SLIDING_WINDOW = """
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[1] - ARGV[2])
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return 1
"""

_memory: dict[str, deque[float]] = {}
_memory_lock = threading.Lock()
_counter = 0


def allow_request(mark: str, ident: str, limit: int, duration: int) -> bool:
    global _counter
    now = time.time()
    if r.redis_enabled():
        with _memory_lock:
            _counter += 1
            member = f"{now}:{_counter}"
        key = r.key("rateLimit", mark + ident)
        return bool(r.sync_redis().eval(_SLIDING_WINDOW, 1, key, now, duration, limit, member))
    with _memory_lock:
        stamps = _memory.setdefault(mark + ident, deque())
        while stamps and stamps[0] <= now - duration:
            stamps.popleft()
        if len(stamps) >= limit:
            return False
        stamps.append(now)
        return True


def reset_memory() -> None:
    with _memory_lock:
        _memory.clear()


def client_ip(request) -> str:
    return client_ip_of(request) or "unknown"


class GlobalApiThrottle(BaseThrottle):
    def allow_request(self, request, view) -> bool:
        if not settings.GLOBAL_API_RATE_LIMIT_ENABLE:
            return True
        return allow_request(
            "GA", client_ip(request), settings.GLOBAL_API_RATE_LIMIT, settings.GLOBAL_API_RATE_LIMIT_DURATION
        )


CRITICAL_LIMIT, CRITICAL_DURATION = 20, 20 * 60


def allow_critical(request) -> bool:
    """One bucket per IP shared by every password-guessing door (/api login and the admin login)."""
    return allow_request("CT", client_ip(request), CRITICAL_LIMIT, CRITICAL_DURATION)


class CriticalThrottle(BaseThrottle):
    """20 requests / 20 minutes per IP on login, register, verification, reset and OAuth.

    Not tunable and not switched off by GLOBAL_API_RATE_LIMIT_ENABLE: it is what stands between
    the open internet and password guessing.
    """

    def allow_request(self, request, view) -> bool:
        return allow_critical(request)
