"""Model request rate limit per user, exact across processes and under concurrency.

Two sliding windows of ModelRequestRateLimitDurationMinutes: every admitted request (cap
ModelRequestRateLimitCount, 0 = none) and every successful one (cap ...SuccessCount). With Redis
both are sorted sets checked and recorded in one Lua call; without Redis the embedded ledger's
owner keeps them (billing/owner_rates.py), so every web worker counts against the same numbers.
An admitted request holds a success slot while it runs (released when it fails), so concurrent
requests cannot pass the success cap together. Denials are 429 with an OpenAI error body.
Successes are recorded when a request is billed (relay.metering.charge.settle); the HTTP router
opens a scope per request (`open_scope`, `close_scope`) whose end frees the slots of requests that did not bill.
"""

from __future__ import annotations

import contextvars
import os
import time

from billing import local_ledger
from newapi_site import redis as r
from newapi_site.options import options
from relay.errors import LocalError

# KEYS: total, success. ARGV: now_ms, window_ms, total_max, success_max, member, hold.
# Returns 0 admitted (and recorded), 1 total cap reached, 2 success cap reached. With hold = 1 the
# member also takes a success slot (removed again if the request fails).
_CHECK = """
local now, window = tonumber(ARGV[1]), tonumber(ARGV[2])
local total_max, success_max = tonumber(ARGV[3]), tonumber(ARGV[4])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - window)
if total_max > 0 and redis.call('ZCARD', KEYS[1]) >= total_max then return 1 end
if success_max > 0 and redis.call('ZCARD', KEYS[2]) >= success_max then return 2 end
redis.call('ZADD', KEYS[1], now, ARGV[5])
redis.call('PEXPIRE', KEYS[1], window)
if ARGV[6] == '1' then
  redis.call('ZADD', KEYS[2], now, ARGV[5])
  redis.call('PEXPIRE', KEYS[2], window)
end
return 0
"""
_RECORD = """
redis.call('ZADD', KEYS[1], tonumber(ARGV[1]), ARGV[3])
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2]))
return 0
"""

# The slots this request holds: (user id, Redis member or owner ticket), until it bills or ends.
_held: contextvars.ContextVar[list[tuple[int, str]] | None] = contextvars.ContextVar(
    "rate_held", default=None
)


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


def _check_failed() -> LocalError:
    return LocalError(
        "rate limit check failed", status=500, type="new_api_error", code="rate_limit_check_failed"
    )


Scope = tuple[contextvars.Token[list[tuple[int, str]] | None], list[tuple[int, str]]]


def open_scope() -> Scope:
    """At the start of one HTTP request: success slots taken from here on are noted (a plain
    context variable, not a context manager: this runs on every relay request)."""
    held: list[tuple[int, str]] = []
    return _held.set(held), held


def close_scope(opened: Scope) -> list[tuple[int, str]]:
    """At the request's end: the success slots it still holds, to give back (`release_held`)."""
    token, held = opened
    _held.reset(token)
    return held


async def release_held(held: list[tuple[int, str]]) -> None:
    for user_id, slot in held:
        await _release(user_id, slot)


async def check(user_id: int) -> None:
    """Admit and record one request for this user, or raise a 429 LocalError."""
    if not enabled():
        return
    window, total_max, success_max = _settings()
    held = _held.get()
    if r.redis_enabled():
        now_ms = int(time.time() * 1000)
        member = _member(now_ms)
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
                member,
                "1" if held is not None else "0",
            )
        except Exception:
            raise _check_failed() from None
        if int(kind):
            raise _denied(int(kind), window, total_max, success_max)
        if held is not None:
            held.append((user_id, member))
        return
    try:
        kind, ticket = await local_ledger.user_rate_admit(int(window * 1000), user_id, total_max, success_max)
    except (OSError, ConnectionError):
        raise _check_failed() from None
    if kind:
        raise _denied(kind, window, total_max, success_max)
    if held is not None:
        held.append((user_id, str(ticket)))
    else:  # nobody would give the slot back: counted as a total only
        await local_ledger.user_rate_done(user_id, ticket, False)


async def record_success(user_id: int) -> None:
    if not enabled():
        return
    held = _held.get()
    slot = next((s for s in held or () if s[0] == user_id), None)
    if slot is not None and held is not None:
        held.remove(slot)  # its success slot becomes the success
        if not r.redis_enabled():
            await _owner_done(user_id, slot[1], True)
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
    await _owner_done(user_id, "0", True)


async def _release(user_id: int, slot: str) -> None:
    if r.redis_enabled():
        try:
            await r.async_redis().zrem(r.key("rateLimit", "MRRLS", user_id), slot)
        except Exception:
            pass  # the slot lapses with the window
        return
    await _owner_done(user_id, slot, False)


async def _owner_done(user_id: int, slot: str, success: bool) -> None:
    try:
        await local_ledger.user_rate_done(user_id, int(slot), success)
    except (OSError, ConnectionError):
        pass  # the slot lapses with the window
