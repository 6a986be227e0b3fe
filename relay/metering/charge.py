"""What the relay adds to billing: the quota error in the relay's vocabulary, and settling a text
request's hold with the bill billing/consume.py writes for it."""

from __future__ import annotations

from billing import notifications
from billing.consume import text_bill
from billing.ledger import QuotaError
from billing.pricing import quota_per_unit, text_quota
from billing.tool_prices import tool_quota
from relay import metrics, rate_limit
from relay.adaptors.base import RelayContext, Usage
from relay.channels import limits
from relay.errors import LocalError
from relay.modes.job import Job


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
    image, audio per character…), with `content` replacing the log line when given.
    Built-in tool calls a mode counted (ctx.extra["tool_calls"]: tool → calls) add their per-call price."""
    if quota is None and ctx.extra.get("tool_calls"):
        tokens = text_quota(job.price, usage.prompt_tokens, usage.completion_tokens, usage.cached_tokens)
        quota = tokens + tool_quota(job.price, job.model, ctx.extra["tool_calls"])
    bill = text_bill(
        job.caller,
        job.price,
        usage,
        ctx.channel.id,
        model=job.model,
        upstream_model=ctx.upstream_model,
        tried=tried,
        frt_ms=frt_ms,
        is_stream=job.is_stream,
        started=job.req.started,
        claude=job.mode == "claude",
        reasoning_effort=ctx.extra.get("reasoning_effort"),
        quota=quota,
        content=content,
    )
    balance = await job.hold.settle(bill)
    if metrics.ENABLED:
        metrics.record_settled(
            job.model,
            ctx.channel.id,
            job.req.started,
            frt_ms if job.is_stream else -1,
            bill.quota,
            usage.prompt_tokens,
            usage.completion_tokens,
            usage.cached_tokens,
            usage.reasoning_tokens,
        )
    await rate_limit.record_success(job.caller.user.id)
    if balance is not None:
        await notifications.after_charge(job.caller.user.id, job.caller.user.setting, bill.quota, balance)
    if ctx.channel.setting:  # only a channel with a TPM limit counts tokens
        await limits.add_tokens(ctx.channel, usage.prompt_tokens + usage.completion_tokens)
