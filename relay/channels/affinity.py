"""Channel affinity for providers' prompt caches (option ChannelAffinityEnabled, off by default).

Requests with the same `prompt_cache_key` (OpenAI's field; per user and model), or else from the
same token for the same model, within ChannelAffinitySeconds of the last one prefer the channel
that served it, while that channel is healthy (enabled, serving the model in the caller's group,
not at its rate limit): a provider's prompt cache is per account, so moving between channels
throws it away. With Redis the memory is shared by every process (a GET when choosing, a SET
after serving); without it each process remembers its own requests.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections import OrderedDict
from typing import Any

from newapi_site import redis as r
from newapi_site.options import options

log = logging.getLogger("newapi.relay")
OPTION_DEFAULTS = {"ChannelAffinityEnabled": "false", "ChannelAffinitySeconds": "300"}
MEMORY_SIZE = 10_000  # remembered keys per process without Redis (least recently used go first)

_memory: OrderedDict[str, tuple[int, float]] = OrderedDict()


def enabled() -> bool:
    return options.get_bool("ChannelAffinityEnabled")


def _seconds() -> int:
    return max(options.get_int("ChannelAffinitySeconds", 300), 1)


def key_for(user_id: int, token_id: int, model: str, body: dict[str, Any]) -> str:
    """The affinity key of a request, or "" when affinity is off."""
    if not enabled():
        return ""
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        digest = hashlib.sha256(cache_key.encode()).hexdigest()[:32]  # bounded, never the raw text
        return f"p:{user_id}:{model}:{digest}"
    return f"t:{token_id}:{model}"


async def recall(key: str) -> int | None:
    """The channel that served `key` last within the window, if any."""
    if r.redis_enabled():
        try:
            value = await r.async_redis().get(r.key("channelAffinity", key))
        except Exception:
            log.warning("channel affinity lookup failed", exc_info=True)
            return None
        return int(value) if value else None
    entry = _memory.get(key)
    if entry is None or entry[1] <= time.monotonic():
        return None
    return entry[0]


async def remember(key: str, channel_id: int) -> None:
    """`channel_id` served `key`: prefer it for the next ChannelAffinitySeconds."""
    seconds = _seconds()
    if r.redis_enabled():
        try:
            await r.async_redis().set(r.key("channelAffinity", key), channel_id, ex=seconds)
        except Exception:
            log.warning("channel affinity store failed", exc_info=True)
        return
    _memory[key] = (channel_id, time.monotonic() + seconds)
    _memory.move_to_end(key)
    while len(_memory) > MEMORY_SIZE:
        _memory.popitem(last=False)
