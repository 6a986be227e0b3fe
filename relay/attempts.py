"""The channel-choice-and-retry loop for relays other than the text one (Claude messages, images,
audio, rerank): the same rules as pipeline.attempt_all, with the sending step passed in, and
`charge` for modes whose quota is not the text formula."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from accounts.options import options
from billing.settlement import Settlement

from . import pipeline, rate_limit, state
from .adaptors.base import RelayContext, Usage
from .errors import LocalError, RelayError, UpstreamError
from .wire import Response, StreamingResponse

Sender = Callable[[pipeline.Job, RelayContext, list[int]], Awaitable[Response | StreamingResponse]]


async def attempt_all(job: pipeline.Job, send: Sender) -> Response | StreamingResponse:
    index = await state.channels.index()
    retries = options.get_int("RetryTimes", 0)
    exclude: set[int] = set()
    tried: list[int] = []
    last_error: RelayError | None = None
    for attempt in range(retries + 1):
        channel = await pipeline.choose_channel(job, index, exclude)
        if channel is None:
            if last_error is not None:
                break
            raise LocalError(
                f"当前分组 {job.caller.group} 下对于模型 {job.model} 无可用渠道 "
                f"(no available channel for model {job.model} in group {job.caller.group})",
                status=503,
                code="model_not_available",
            )
        tried.append(channel.id)
        ctx = pipeline.make_context(job, channel)
        try:
            return await send(job, ctx, tried)
        except UpstreamError as err:
            pipeline.apply_status_mapping(err, channel)
            last_error = err
            exclude.add(channel.id)
            await pipeline.report_channel_failure(channel, err)
            if not pipeline.should_retry(err, channel, job.caller.pinned_channel_id is not None) or attempt >= retries:
                break
    assert last_error is not None
    raise last_error


async def run(job: pipeline.Job, send: Sender) -> Response | StreamingResponse:
    """attempt_all, refunding the reservation on any failure."""
    try:
        return await attempt_all(job, send)
    except BaseException:
        await job.hold.refund()
        raise


async def charge(job: pipeline.Job, ctx: RelayContext, usage: Usage, quota: int, tried: list[int], content: str = "") -> None:
    """Settle with a quota computed by the mode itself (images: per image, etc.)."""
    log = pipeline.consume_log(job, ctx, usage, quota, tried, -1000)
    if content:
        log["content"] = content
    caller = job.caller
    await job.hold.settle(
        Settlement(
            user_id=caller.user.id,
            token_id=caller.token.id,
            channel_id=ctx.channel.id,
            user_delta=0,
            token_delta=0,
            quota=quota,
            counted=True,
            log=log,
            username=caller.user.username,
            model_name=log["model_name"],
            tokens_used=usage.total,
        )
    )
    await rate_limit.record_success(caller.user.id)
