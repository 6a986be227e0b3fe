"""Channel choice and caller checks shared by the Midjourney and Suno relays."""

from __future__ import annotations

from relay import auth, state
from relay.auth import Caller
from relay.errors import LocalError
from relay.state import ChannelInfo
from relay.wire import ClientRequest


async def authenticate(req: ClientRequest) -> Caller:
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path)
    auth.check_ip(caller.token, req.client_ip)
    return caller


async def pick_channel(caller: Caller, model: str) -> ChannelInfo:
    index = await state.channels.index()
    pinned = caller.pinned_channel_id
    if pinned is not None:
        channel = index.channels.get(pinned)
        if channel is None:
            raise LocalError("无效的渠道 Id (invalid channel id)", status=400)
        if channel.status != 1:
            raise LocalError("该渠道已被禁用 (channel disabled)", status=403)
        return channel
    auth.check_model_allowed(caller.token, model)
    channel = index.pick(caller.group, model, set())
    if channel is None:
        raise LocalError(
            f"当前分组 {caller.group} 下对于模型 {model} 无可用渠道 (no available channel for model {model} in group {caller.group})",
            status=503,
            code="model_not_available",
        )
    return channel


async def channel_by_id(channel_id: int) -> ChannelInfo | None:
    index = await state.channels.index()
    return index.channels.get(channel_id)
