"""Model request rate limit per user, exact across processes.

Two sliding windows of ModelRequestRateLimitDurationMinutes: every admitted request (cap
ModelRequestRateLimitCount, 0 = none) and every successful one (cap ...SuccessCount). With Redis
both are sorted sets checked and recorded in one Lua call, so concurrent gateways cannot
overshoot; without Redis, in-process deques. Denials are 429 with an OpenAI error body.
Successes are recorded when a request is billed (relay.metering.charge.settle).
"""

from __future__ import annotations

import os
import time
from collections import deque

from newapi_site import redis as r
from newapi_site.options import options
from relay.errors import LocalError

# KEYS: total, success. ARGV: now_ms, window_ms, total_max, success_max, member.
# Returns 0 admitted (and recorded), 1 total cap reached, 2 success cap reached.
_CHECK = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local total_max, success_max = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if total_max > 0 and redis.call('ZCARD', KEYS[1]) >= total_max then return 1 end
if success_max > 0 and redis.call('ZCARD', KEYS[2]) >= success_max then return 2 end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
return 0
"""
_RECORD = """
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""

_memory: dict[str, deque[float]] = {}


def _settings() -> tuple[float, int, int]:
    minutes = max(options.get_int("ModelRequestRateLimitDurationMinutes", 1), 1)
    return (
        minutes * 60.0,
        options.get_int("ModelRequestRateLimitCount", 0),
        options.get_int("ModelRequestRateLimitSuccessCount", 1000),
    )


def enabled() -> bool:
    return options.get_bool("ModelRequestRateLimitEnabled")


def _member(now_ms: int) -> str:
    return f"{now_ms}-{os.getpid()}-{os.urandom(4).hex()}"


def _denied(kind: int, window: float, total_max: int, success_max: int) -> LocalError:
    minutes = int(window // 60)
    if kind == 1:
        msg = f"您已达到总请求数限制：{minutes}分钟内最多请求{total_max}次，包括失败次数，请检查您的请求是否正确"
    else:
        msg = f"您已达到请求数限制：{minutes}分钟内最多请求{success_max}次"
    return LocalError(msg, status=429, type="new_api_error", code="model_request_rate_limited")


def _prune(q: deque[float], now: float, window: float) -> deque[float]:
    while q and q[0] <= now - window:
        q.popleft()
    return q


async def check(user_id: int) -> None:
    """Admit and record one request for this user, or raise a 429 LocalError."""
    if not enabled():
        return
    window, total_max, success_max = _settings()
    if r.redis_enabled():
        now_ms = int(time.time() * 1000)
        try:
            kind = await r.async_redis().eval(
                _CHECK,
                2,
                r.key("rateLimit", "MRRL", user_id),
                r.key("rateLimit", "MRRLS", user_id),
                now_ms,
                int(window * 1000),
                total_max,
                success_max,
                _member(now_ms),
            )
        except Exception:
            raise LocalError(
                "rate limit check failed", status=500, type="new_api_error", code="rate_limit_check_failed"
            ) from None
        if int(kind):
            raise _denied(int(kind), window, total_max, success_max)
        return
    now = time.time()
    total = _prune(_memory.setdefault(f"MRRL:{user_id}", deque()), now, window)
    success = _prune(_memory.setdefault(f"MRRLS:{user_id}", deque()), now, window)
    if total_max > 0 and len(total) >= total_max:
        raise _denied(1, window, total_max, success_max)
    if success_max > 0 and len(success) >= success_max:
        raise _denied(2, window, total_max, success_max)
    total.append(now)


async def record_success(user_id: int) -> None:
    if not enabled():
        return
    window, _total, _success = _settings()
    if r.redis_enabled():
        now_ms = int(time.time() * 1000)
        try:
            await r.async_redis().eval(
                _RECORD, 1, r.key("rateLimit", "MRRLS", user_id), now_ms, int(window * 1000), _member(now_ms)
            )
        except Exception:
            pass  # a missed success record only loosens the limit
        return
    _memory.setdefault(f"MRRLS:{user_id}", deque()).append(time.time())
