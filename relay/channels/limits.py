"""Per-channel rate limits: `setting.rpm_limit` (requests a minute) and `setting.tpm_limit` (tokens a
minute: prompt plus completion of the requests billed on the channel). 0 or absent: no limit.

A channel at a limit is passed over in channel choice (relay/channels/choice.py) while another can
serve. Each counter is a window that opens with its first use and lasts WINDOW_MS (a key created
with its expiry): a request is admitted while fewer than rpm_limit were admitted in the window and
fewer than tpm_limit tokens were billed in it.

The counters are shared by every process: `admit` checks the candidates in order and counts the
one it admits in one step, so concurrent workers cannot overshoot. With Redis that step is one Lua
call (shared by every gateway on that Redis); without it, one line to the embedded ledger's owner
process (billing/ledger_owner.py: the `manage.py serve` parent), which keeps the windows in memory.
A request costs that one round trip, and only when the channel it lands on has a limit.
"""

from __future__ import annotations

import logging
from typing import Any

import orjson

from billing import local_ledger
from newapi_site import redis as r
from relay.upstream import proxies

log = logging.getLogger("newapi.relay")
WINDOW_MS = 60_000

# KEYS: per candidate its rpm counter, then its tpm counter. ARGV: window_ms, then per candidate
# rpm_limit, tpm_limit. Returns the 1-based index of the admitted candidate (its request counted), or 0.
_ADMIT = """
local window = tonumber(ARGV[1])
for i = 1, #KEYS / 2 do
  local rpm, tpm = tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1])
  local ok = true
  if tpm > 0 and tonumber(redis.call('GET', KEYS[2 * i]) or '0') >= tpm then ok = false end
  if ok and rpm > 0 then
    local rkey = KEYS[2 * i - 1]
    if tonumber(redis.call('GET', rkey) or '0') >= rpm then
      ok = false
    elseif redis.call('INCR', rkey) == 1 then
      redis.call('PEXPIRE', rkey, window)
    end
  end
  if ok then return i end
end
return 0
"""
_ADD_TOKENS = """
redis.call('INCRBY', KEYS[1], tonumber(ARGV[1]))
if redis.call('PTTL', KEYS[1]) < 0 then redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[2])) end
return 0
"""


def _limit(setting: dict[str, Any], name: str) -> int:
    value = setting.get(name) if setting else None
    if value is None or isinstance(value, bool):
        return 0
    try:
        return max(int(value), 0)
    except (TypeError, ValueError):
        return 0


def rpm(channel: Any) -> int:
    return _limit(channel.setting, "rpm_limit")


def tpm(channel: Any) -> int:
    return _limit(channel.setting, "tpm_limit")


def limited(channel: Any) -> bool:
    """True when the channel has a request or token limit (the check costs nothing otherwise)."""
    return bool(channel.setting) and (rpm(channel) > 0 or tpm(channel) > 0)


def problem(setting: dict[str, Any]) -> str | None:
    """Why the limits in a channel's setting are unusable, or None."""
    for name in ("rpm_limit", "tpm_limit"):
        value = setting.get(name)
        if value is None or value == "":
            continue
        if isinstance(value, bool) or not isinstance(value, int | str):
            return f"setting.{name} must be a whole number (0 = no limit)"
        try:
            if int(value) < 0:
                return f"setting.{name} must be 0 (no limit) or more"
        except ValueError:
            return f"setting.{name} must be a whole number (0 = no limit)"
    return None


async def admit(candidates: list[Any]) -> Any | None:
    """The first of `candidates` (in preference order) not at a limit, its request counted; None
    when every one is at its limit. Candidates after the first unlimited one are never reached."""
    try:
        if r.redis_enabled():
            keys: list[str] = []
            args: list[int] = [WINDOW_MS]
            for c in candidates:
                keys += [r.key("channelLimit", "rpm", c.id), r.key("channelLimit", "tpm", c.id)]
                args += [rpm(c), tpm(c)]
            chosen = int(await r.async_redis().eval(_ADMIT, len(keys), *keys, *args))
        else:
            chosen = await local_ledger.window_admit([(c.id, rpm(c), tpm(c)) for c in candidates], WINDOW_MS)
    except Exception:
        # A limit store that cannot answer must not stop the relay: serve unchecked.
        log.warning("channel limit check failed; serving without it", exc_info=True)
        return candidates[0] if candidates else None
    return candidates[chosen - 1] if chosen else None


async def add_tokens(channel: Any, tokens: int) -> None:
    """Count a billed request's tokens against the channel's TPM (only when it has one)."""
    if tokens <= 0 or not tpm(channel):
        return
    try:
        if r.redis_enabled():
            key = r.key("channelLimit", "tpm", channel.id)
            await r.async_redis().eval(_ADD_TOKENS, 1, key, tokens, WINDOW_MS)
        else:
            await local_ledger.window_add_tokens(channel.id, tokens, WINDOW_MS)
    except Exception:
        log.warning("channel token count failed", exc_info=True)  # only loosens the limit


def setting_problem(raw: str | None) -> str | None:
    """What is wrong with a channel's setting JSON as the relay reads it (proxy URL, limits), or None."""
    try:
        setting = orjson.loads(raw or "{}")
    except orjson.JSONDecodeError:
        return None  # the JSON check is the caller's
    if not isinstance(setting, dict):
        return None
    proxy = setting.get("proxy")
    if proxy is not None and not isinstance(proxy, str):
        return "setting.proxy must be a URL string"
    if proxy and (why := proxies.problem(proxy)) is not None:
        return f"setting.proxy: {why}"
    return problem(setting)
