"""The bill of a finished request: its consume-log row and the Settlement that carries the row and
the charge to the ledger, for every mode (text relay, Realtime sessions, Midjourney and Suno tasks).

Billing takes plain data: the payer (anything shaped like the relay's authenticated caller: user id
and name, token id and name, group), the Price, token counts, the channel id and what the mode adds
to the row. Each mode differs only in its content line and its `other` JSON; the row's columns, and
how the settlement is put together, are written once here.
"""

from __future__ import annotations

import time
from typing import Any, Protocol

import orjson

from billing.pricing import AUDIO_COMPLETION_RATIO, Price, Tally, audio_ratio, normalize_model, text_quota
from billing.settlement import Settlement


class PayingUser(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def username(self) -> str: ...


class PayingToken(Protocol):
    @property
    def id(self) -> int: ...
    @property
    def name(self) -> str: ...


class Payer(Protocol):
    """Who pays: the user and token of the request, and the group it was priced in."""

    @property
    def user(self) -> PayingUser: ...
    @property
    def token(self) -> PayingToken: ...
    @property
    def group(self) -> str: ...


class TokenUsage(Protocol):
    """A text request's token counts, as the upstream reported them or as counted locally."""

    @property
    def prompt_tokens(self) -> int: ...
    @property
    def completion_tokens(self) -> int: ...
    @property
    def cached_tokens(self) -> int: ...
    @property
    def cache_creation_tokens(self) -> int: ...


def settlement(
    payer: Payer,
    channel_id: int,
    model_name: str,
    quota: int,
    counted: bool,
    prompt_tokens: int,
    completion_tokens: int,
    *,
    content: str,
    other: dict[str, Any],
    is_stream: bool,
    started: float,
) -> Settlement:
    """The consume-log row and its settlement: the one place the row's columns are filled."""
    now = time.time()
    user, token = payer.user, payer.token
    log = {
        "user_id": user.id,
        "username": user.username,
        "created_at": int(now),
        "content": content,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "model_name": model_name,
        "token_name": token.name,
        "token_id": token.id,
        "quota": quota,
        "use_time": int(now - started),
        "is_stream": is_stream,
        "channel_id": channel_id,
        "group": payer.group,
        "other": orjson.dumps(other).decode(),
    }
    return Settlement(
        user_id=user.id,
        token_id=token.id,
        channel_id=channel_id,
        user_delta=0,
        token_delta=0,
        quota=quota,
        counted=counted,
        log=log,
        username=user.username,
        model_name=model_name,
        tokens_used=prompt_tokens + completion_tokens,
    )


def text_bill(
    payer: Payer,
    price: Price,
    usage: TokenUsage,
    channel_id: int,
    *,
    model: str,
    upstream_model: str,
    tried: list[int],
    frt_ms: int,
    is_stream: bool,
    started: float,
    claude: bool = False,
    reasoning_effort: str | None = None,
    quota: int | None = None,
    content: str = "",
) -> Settlement:
    """A text-relay request: the token formula, or `quota` when the mode prices itself (images per
    image, audio per character…), with `content` replacing the log line when given."""
    prompt, completion = usage.prompt_tokens, usage.completion_tokens
    total = prompt + completion
    if quota is None:
        counted = total > 0
        quota = (
            text_quota(price, prompt, completion, usage.cached_tokens, usage.cache_creation_tokens)
            if counted
            else 0
        )
    else:
        counted = True
    model_name = normalize_model(model)
    if not content:
        content = text_content(price, total, model, model_name)
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
    if claude:
        other["claude"] = True
    if reasoning_effort:
        other["reasoning_effort"] = reasoning_effort
    if usage.cache_creation_tokens:
        other["cache_creation_tokens"] = usage.cache_creation_tokens
        other["cache_creation_ratio"] = price.cache_creation_ratio
    if upstream_model != model:
        other["is_model_mapped"] = True
        other["upstream_model_name"] = upstream_model
    return settlement(
        payer,
        channel_id,
        model_name,
        quota,
        counted,
        prompt,
        completion,
        content=content,
        other=other,
        is_stream=is_stream,
        started=started,
    )


def text_content(price: Price, total_tokens: int, model: str, model_name: str) -> str:
    if price.use_price:
        content = f"模型价格 {price.model_price:.2f}，分组倍率 {price.group_ratio:.2f}"
    else:
        content = f"模型倍率 {price.model_ratio:.2f}，补全倍率 {price.completion_ratio:.2f}，分组倍率 {price.group_ratio:.2f}"
    if total_tokens == 0:
        content += "（可能是上游超时）"
    if model != model_name:
        content += f"，模型 {model}"
    return content


def realtime_bill(
    payer: Payer,
    price: Price,
    totals: Tally,
    channel_id: int,
    *,
    model: str,
    quota: int,
    frt_ms: int,
    started: float,
) -> Settlement:
    """A Realtime session: everything that arrived (reported or estimated), charged `quota`."""
    other = {
        "model_ratio": price.model_ratio,
        "group_ratio": price.group_ratio,
        "completion_ratio": price.completion_ratio,
        "model_price": price.model_price if price.use_price else -1,
        "frt": frt_ms,
        "ws": True,
        "audio_input": totals.audio_in,
        "audio_output": totals.audio_out,
        "text_input": totals.text_in,
        "text_output": totals.text_out,
        "audio_ratio": audio_ratio(model),
        "audio_completion_ratio": AUDIO_COMPLETION_RATIO,
        "admin_info": {"use_channel": [channel_id]},
    }
    return settlement(
        payer,
        channel_id,
        model,
        quota,
        price.use_price or not totals.empty(),
        totals.input,
        totals.output,
        content="",
        other=other,
        is_stream=True,
        started=started,
    )


def task_bill(
    payer: Payer,
    channel_id: int,
    *,
    model: str,
    model_price: float,
    group_ratio: float,
    quota: int,
    action: str,
    task_id: str,
    started: float,
) -> Settlement:
    """A Midjourney or Suno action at its fixed price, with New API's fixed-price log line."""
    content = f"模型固定价格 {model_price:.2f}，分组倍率 {group_ratio:.2f}，操作 {action}"
    if task_id:
        content += f"，ID {task_id}"
    return settlement(
        payer,
        channel_id,
        model,
        quota,
        True,
        0,
        0,
        content=content,
        other={"model_price": model_price, "group_ratio": group_ratio},
        is_stream=False,
        started=started,
    )
