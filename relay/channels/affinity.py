"""Channel affinity for providers' prompt caches (option ChannelAffinityEnabled, off by default).

Requests with the same `prompt_cache_key` (OpenAI's field; per user and model), or else from the
same token for the same model, within ChannelAffinitySeconds of the last one prefer the channel
that served it, while that channel is healthy (enabled, serving the model in the caller's group,
not at its rate limit): a provider's prompt cache is per account, so moving between channels
throws it away. The memory is shared by every process: in Redis when configured, else in the
embedded ledger's owner process (billing/ledger_owner.py); a GET when choosing, a SET after serving.
"""

from __future__ import annotations

import hashlib
import logging
from typing import Any

from billing import local_ledger
from newapi_site import redis as r
from newapi_site.options import options

log = logging.getLogger("newapi.relay")
OPTION_DEFAULTS = {"ChannelAffinityEnabled": "false", "ChannelAffinitySeconds": "300"}


def enabled() -> bool:
    return options.get_bool("ChannelAffinityEnabled")


def _seconds() -> int:
    return max(options.get_int("ChannelAffinitySeconds", 300), 1)


def key_for(user_id: int, token_id: int, model: str, body: dict[str, Any]) -> str:
    """The affinity key of a request, or "" when affinity is off. A digest: the client's text
    (its cache key, the model name) never reaches a store as is."""
    if not enabled():
        return ""
    cache_key = body.get("prompt_cache_key")
    if isinstance(cache_key, str) and cache_key:
        name = f"p\0{user_id}\0{model}\0{cache_key}"
    else:
        name = f"t\0{token_id}\0{model}"
    return hashlib.sha256(name.encode()).hexdigest()[:40]


async def recall(key: str) -> int | None:
    """The channel that served `key` last within the window, if any."""
    try:
        if r.redis_enabled():
            value = await r.async_redis().get(r.key("channelAffinity", key))
            return int(value) if value else None
        return await local_ledger.recall(key.encode()) or None
    except Exception:
        log.warning("channel affinity lookup failed", exc_info=True)
        return None


async def remember(key: str, channel_id: int) -> None:
    """`channel_id` served `key`: prefer it for the next ChannelAffinitySeconds."""
    seconds = _seconds()
    try:
        if r.redis_enabled():
            await r.async_redis().set(r.key("channelAffinity", key), channel_id, ex=seconds)
        else:
            await local_ledger.remember(key.encode(), channel_id, seconds)
    except Exception:
        log.warning("channel affinity store failed", exc_info=True)
