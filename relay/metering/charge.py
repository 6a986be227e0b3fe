"""What a relayed request is charged, and the consume log line that says so (shared/spec/relay.md §9)."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import orjson

from billing.ledger import QuotaError
from billing.pricing import normalize_model, quota_per_unit, text_quota
from billing.settlement import Settlement
from relay import rate_limit
from relay.adaptors.base import RelayContext, Usage
from relay.errors import LocalError

if TYPE_CHECKING:
    from relay.modes.pipeline import Job


def quota_error(exc: QuotaError) -> LocalError:
    qpu = quota_per_unit() or 1
    if exc.kind == "user_empty":
        msg, code = "user quota is not enough", "insufficient_user_quota"
    elif exc.kind == "user_insufficient":
        msg = f"pre-consumed quota failed, user quota: ${exc.balance / qpu:.6f}, need quota: ${exc.need / qpu:.6f}"
        code = "insufficient_user_quota"
    elif exc.kind == "token_exhausted":
        return LocalError("该令牌额度已用尽 (token quota exhausted)", status=401, code=None)
    else:
        msg = f"token quota is not enough, token remain quota: ${exc.balance / qpu:.6f}, need quota: ${exc.need / qpu:.6f}"
        code = "pre_consume_token_quota_failed"
    return LocalError(msg, status=403, type="new_api_error", code=code)


async def settle(
    job: Job,
    ctx: RelayContext,
    usage: Usage,
    tried: list[int],
    frt_ms: int,
    quota: int | None = None,
    content: str = "",
) -> None:
    """Charge the request: the text formula, or `quota` when the mode prices itself (images per
    image, audio per character…), with `content` replacing the log line when given."""
    if quota is None:
        price = job.price
        if price.use_price:
            quota = text_quota(price, usage.prompt_tokens, usage.completion_tokens)
        else:
            quota = text_quota(
                price,
                usage.prompt_tokens,
                usage.completion_tokens,
                usage.cached_tokens,
                usage.cache_creation_tokens,
            )
        counted = usage.total > 0
        if not counted:
            quota = 0
    else:
        counted = True
    log = consume_log(job, ctx, usage, quota, tried, frt_ms)
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
            counted=counted,
            log=log,
            username=caller.user.username,
            model_name=log["model_name"],
            tokens_used=usage.total,
        )
    )
    await rate_limit.record_success(caller.user.id)


def consume_log(
    job: Job, ctx: RelayContext, usage: Usage, quota: int, tried: list[int], frt_ms: int
) -> dict[str, Any]:
    price = job.price
    if price.use_price:
        content = f"模型价格 {price.model_price:.2f}，分组倍率 {price.group_ratio:.2f}"
    else:
        content = f"模型倍率 {price.model_ratio:.2f}，补全倍率 {price.completion_ratio:.2f}，分组倍率 {price.group_ratio:.2f}"
    if usage.total == 0:
        content += "（可能是上游超时）"
    other: dict[str, Any] = {
        "model_ratio": price.model_ratio,
        "group_ratio": price.group_ratio,
        "completion_ratio": price.completion_ratio,
        "cache_tokens": usage.cached_tokens,
        "cache_ratio": price.cache_ratio,
        "model_price": price.model_price,
        "frt": frt_ms,
        "admin_info": {"use_channel": tried},
    }
    if job.mode == "claude":
        other["claude"] = True
    if ctx.extra.get("reasoning_effort"):
        other["reasoning_effort"] = ctx.extra["reasoning_effort"]
    if usage.cache_creation_tokens:
        other["cache_creation_tokens"] = usage.cache_creation_tokens
        other["cache_creation_ratio"] = price.cache_creation_ratio
    if ctx.upstream_model != job.model:
        other["is_model_mapped"] = True
        other["upstream_model_name"] = ctx.upstream_model
    if job.model != normalize_model(job.model):
        content += f"，模型 {job.model}"
    now = time.time()
    return {
        "user_id": job.caller.user.id,
        "username": job.caller.user.username,
        "created_at": int(now),
        "content": content,
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "model_name": normalize_model(job.model),
        "token_name": job.caller.token.name,
        "token_id": job.caller.token.id,
        "quota": quota,
        "use_time": int(now - job.req.started),
        "is_stream": job.is_stream,
        "channel_id": ctx.channel.id,
        "group": job.caller.group,
        "other": orjson.dumps(other).decode(),
    }
