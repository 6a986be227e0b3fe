"""Channel choice and caller checks shared by the Midjourney and Suno relays."""

from __future__ import annotations

from relay import auth, state
from relay.auth import Caller
from relay.channels.types import ChannelStatus
from relay.edge.wire import ClientRequest
from relay.errors import LocalError
from relay.state import ChannelIndex, ChannelInfo


async def authenticate(req: ClientRequest) -> Caller:
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path)
    auth.check_ip(caller.token, req.client_ip)
    return caller


def _choose(index: ChannelIndex, caller: Caller, model: str) -> ChannelInfo | None:
    pinned = caller.pinned_channel_id
    if pinned is not None:
        return index.channels.get(pinned)
    return index.pick(caller.group, model, set())


async def pick_channel(caller: Caller, model: str) -> ChannelInfo:
    if caller.pinned_channel_id is None:
        auth.check_model_allowed(caller.token, model)
    index = await state.channels.index()
    channel = _choose(index, caller, model)
    # or added / enabled a moment ago through another process?
    unusable = channel is None or channel.status != ChannelStatus.ENABLED
    if unusable and (fresh := await state.fresher_channels(index)) is not None:
        channel = _choose(fresh, caller, model)
    if caller.pinned_channel_id is not None:
        if channel is None:
            raise LocalError("无效的渠道 Id (invalid channel id)", status=400)
        if channel.status != ChannelStatus.ENABLED:
            raise LocalError("该渠道已被禁用 (channel disabled)", status=403)
        return channel
    if channel is None:
        raise LocalError(
            f"当前分组 {caller.group} 下对于模型 {model} 无可用渠道 (no available channel for model {model} in group {caller.group})",
            status=503,
            code="model_not_available",
        )
    return channel


async def channel_by_id(channel_id: int) -> ChannelInfo | None:
    index = await state.channels.index()
    channel = index.channels.get(channel_id)
    unusable = (
        channel is None or channel.status != ChannelStatus.ENABLED
    )  # or re-enabled a moment ago through another process?
    if unusable and (fresh := await state.fresher_channels(index)) is not None:
        channel = fresh.channels.get(channel_id)
    return channel
