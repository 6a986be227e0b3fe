"""Channel choice for every entry point (text relay, Realtime dial, Midjourney and Suno submit):
which channel serves a request first, which one next after a failure, and the error when none can.

Channels are indexed by (group, model) into priority tiers (relay.state.ChannelIndex). A pick is
weighted-random (weight + 10) inside the highest tier that still has a candidate; a retry never
picks a channel that already failed in this request, so retries walk down the priorities, at most
RetryTimes of them. A caller pinned to one channel (a `sk-…-<id>` key) gets that channel or an
error, never another and never a retry. Before failing for want of a channel, the process catches
up on the invalidation bus: a channel added or enabled a moment ago through another process is found.

A mode that only some providers speak declares the channel types that serve it (`types`); channels
of other types are passed over as if they did not list the model.

A channel with a rate limit (relay/channels/limits.py) is admitted only while under it; when the
pick lands on one, the other candidates follow in the order they would be picked, and the first
one not at its limit serves (one call to the limit store). When every candidate is at its limit,
the answer is a 429, which clients retry after a pause. With channel affinity on
(relay/channels/affinity.py), the channel that served the same prompt cache key (or token and
model) last is tried first while it is healthy.
"""

from __future__ import annotations

import random

from billing.pricing import normalize_model
from newapi_site.options import options
from relay import state
from relay.auth import Caller
from relay.channels import affinity, limits
from relay.channels.types import ChannelStatus
from relay.errors import LocalError
from relay.state import ChannelIndex, ChannelInfo


def no_channel(group: str, model: str) -> LocalError:
    """The one "no available channel" error, whatever the entry point."""
    return LocalError(
        f"当前分组 {group} 下对于模型 {model} 无可用渠道 "
        f"(no available channel for model {model} in group {group})",
        status=503,
        code="model_not_available",
    )


def pick(
    index: ChannelIndex,
    group: str,
    model: str,
    exclude: list[int],
    types: frozenset[int] | None = None,
) -> ChannelInfo | None:
    """Weighted random inside the highest tier that still has a candidate not in `exclude`."""
    tiers = index.tiers.get((group, model))
    if not tiers:
        return None
    for tier in tiers:
        candidates = [c for c in tier if c.id not in exclude and c.status == ChannelStatus.ENABLED]
        if types is not None:
            candidates = [c for c in candidates if c.type in types]
        if not candidates:
            continue
        if len(candidates) == 1:
            return candidates[0]
        return _weighted(candidates)
    return None


def channel_busy(group: str, model: str) -> LocalError:
    """Every channel that serves the model is at its rate limit: retry later."""
    return LocalError(
        f"当前分组 {group} 下模型 {model} 的渠道均已达到速率限制，请稍后再试 "
        f"(every channel for model {model} in group {group} is at its rate limit, try again later)",
        status=429,
        type="new_api_error",
        code="channel_rate_limited",
    )


def _weighted(candidates: list[ChannelInfo]) -> ChannelInfo:
    total = sum(c.weight + 10 for c in candidates)
    r = random.uniform(0, total)
    for c in candidates:
        r -= c.weight + 10
        if r <= 0:
            return c
    return candidates[-1]


def preference(
    index: ChannelIndex,
    group: str,
    model: str,
    exclude: list[int],
    types: frozenset[int] | None,
    first: ChannelInfo,
) -> list[ChannelInfo]:
    """`first`, then the other candidates in the order picks would give them (tier by tier,
    weighted within a tier), up to the first one without a rate limit."""
    order = [first]
    for tier in index.tiers.get((group, model)) or ():
        candidates = [
            c
            for c in tier
            if c.id not in exclude
            and c.id != first.id
            and c.status == ChannelStatus.ENABLED
            and (types is None or c.type in types)
        ]
        while candidates:
            c = _weighted(candidates)
            candidates.remove(c)
            order.append(c)
            if not limits.limited(c):
                return order
    return order


class Route:
    """One request's walk over the channels: `first()`, then `another()` after each failure, and
    `served()` once a channel answered.

    `tried` lists the channels in the order they were given out (the consume log's use_channel);
    the failed ones among them are what later picks exclude.
    """

    __slots__ = (
        "_at_limit",
        "_index",
        "affinity",
        "group",
        "key",
        "model",
        "pinned",
        "retries",
        "tried",
        "types",
    )

    def __init__(
        self, caller: Caller, model: str, types: frozenset[int] | None = None, affinity: str = ""
    ) -> None:
        self.group = caller.group
        self.model = model
        self.key = normalize_model(model)  # gpt-4-gizmo-… models share one wildcard ability
        self.pinned = caller.pinned_channel_id
        self.types = types
        self.tried: list[int] = []
        self.retries = 0
        self.affinity = affinity if self.pinned is None else ""  # affinity.key_for(...), "" for none
        self._index: ChannelIndex | None = None
        self._at_limit = False  # a candidate was passed over for its rate limit

    async def first(self) -> ChannelInfo:
        """The channel to try first; raises the no-channel (or pinned-channel) error."""
        index = await state.channels.index()
        channel = await self._choose(index)
        # or added / enabled a moment ago through another process?
        if channel is None and (fresh := await state.fresher_channels(index)) is not None:
            index, channel = fresh, await self._choose(fresh)
        if channel is None:
            raise self._refusal(index)
        self._index = index
        if self.pinned is None:
            self.retries = options.get_int("RetryTimes", 0)
        self.tried.append(channel.id)
        return channel

    async def another(self) -> ChannelInfo | None:
        """After the last channel failed in a way another may not: the next channel (rate limits
        applied), or None when the retries are spent or no other channel serves the model."""
        if len(self.tried) > self.retries or self._index is None:
            return None
        channel = await self._pick(self._index)
        if channel is not None:
            self.tried.append(channel.id)
        return channel

    async def served(self, channel: ChannelInfo) -> None:
        """`channel` answered: with affinity on, the next request with this key prefers it."""
        if self.affinity:
            await affinity.remember(self.affinity, channel.id)

    async def _pick(self, index: ChannelIndex) -> ChannelInfo | None:
        channel = pick(index, self.group, self.key, self.tried, self.types)
        if channel is None or not limits.limited(channel):
            return channel  # the common case: no limit, no call to the limit store
        admitted = await limits.admit(
            preference(index, self.group, self.key, self.tried, self.types, channel)
        )
        if admitted is None:
            self._at_limit = True
        return admitted

    def _healthy(self, index: ChannelIndex, channel_id: int) -> ChannelInfo | None:
        """The channel if it may serve this request now (its rate limit aside)."""
        channel = index.channels.get(channel_id)
        if channel is None or channel.status != ChannelStatus.ENABLED or channel_id in self.tried:
            return None
        if self.types is not None and channel.type not in self.types:
            return None
        tiers = index.tiers.get((self.group, self.key)) or ()
        return channel if any(c.id == channel_id for tier in tiers for c in tier) else None

    async def _choose(self, index: ChannelIndex) -> ChannelInfo | None:
        if self.pinned is None:
            if self.affinity and (last := await affinity.recall(self.affinity)) is not None:
                channel = self._healthy(index, last)
                if channel is not None and (
                    not limits.limited(channel) or await limits.admit([channel]) is not None
                ):
                    return channel
            return await self._pick(index)
        channel = index.channels.get(self.pinned)
        if channel is None or channel.status != ChannelStatus.ENABLED:
            return None
        if self.types is not None and channel.type not in self.types:
            return None
        if limits.limited(channel) and await limits.admit([channel]) is None:
            self._at_limit = True
            return None
        return channel

    def _refusal(self, index: ChannelIndex) -> LocalError:
        if self._at_limit:
            return channel_busy(self.group, self.model)
        if self.pinned is None:
            return no_channel(self.group, self.model)
        channel = index.channels.get(self.pinned)
        if channel is None:
            return LocalError("无效的渠道 Id (invalid channel id)", status=400)
        if channel.status != ChannelStatus.ENABLED:
            return LocalError("该渠道已被禁用 (channel disabled)", status=403)
        return LocalError(
            f"channel type {channel.type} does not serve this endpoint",
            status=400,
            type="invalid_request_error",
            code="invalid_api_type",
        )


async def channel_by_id(channel_id: int) -> ChannelInfo | None:
    """A task follow-up's own channel (it must reach the account that holds the task), enabled or not."""
    index = await state.channels.index()
    channel = index.channels.get(channel_id)
    # or re-enabled a moment ago through another process?
    if (channel is None or channel.status != ChannelStatus.ENABLED) and (
        fresh := await state.fresher_channels(index)
    ) is not None:
        channel = fresh.channels.get(channel_id)
    return channel
