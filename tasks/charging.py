"""Fixed-price charging for async tasks (tasks-special.md §0.1, §0.2; relay.md §13.7).

A task action costs `int(ModelPrice[model] × group ratio × QuotaPerUnit)`. The quota is reserved
before the upstream call and settled (with a consume log named after the action's model) only when
the upstream accepted the task; otherwise the reservation is returned.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from billing import ledger
from billing.ledger import Account, Hold, QuotaError
from billing.pricing import group_ratio, model_price, quota_per_unit
from billing.settlement import Settlement
from relay.auth import Caller
from relay.modes.pipeline import quota_error

DEFAULT_TASK_PRICE = 0.1


@dataclass(slots=True)
class Quote:
    model: str
    price: float
    group_ratio: float
    quota: int


def quote(model: str, group: str) -> Quote:
    price = model_price(model)
    if price is None:
        price = DEFAULT_TASK_PRICE
    g = group_ratio(group)
    return Quote(model, price, g, int(price * g * quota_per_unit()))


class NotEnough(Exception):
    """The balance cannot pay the action; each relay answers it in its own error shape."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail


async def reserve(caller: Caller, amount: int, free: bool = False) -> Hold:
    acct = Account(caller.user.id, caller.token.id, not caller.token.unlimited_quota)
    if free:  # free actions are not balance-checked (tasks-special.md §1.5 step 5)
        return Hold(acct, 0)
    try:
        return await ledger.reserve(acct, amount)
    except QuotaError as exc:
        raise NotEnough(quota_error(exc).message) from None


async def charge(
    hold: Hold, caller: Caller, q: Quote, channel_id: int, action: str, started: float, task_id: str = ""
) -> None:
    """Settle the hold at the quoted price with New API's fixed-price log line."""
    content = f"模型固定价格 {q.price:.2f}，分组倍率 {q.group_ratio:.2f}，操作 {action}"
    if task_id:
        content += f"，ID {task_id}"
    now = time.time()
    log = {
        "user_id": caller.user.id,
        "username": caller.user.username,
        "created_at": int(now),
        "content": content,
        "prompt_tokens": 0,
        "completion_tokens": 0,
        "model_name": q.model,
        "token_name": caller.token.name,
        "token_id": caller.token.id,
        "quota": q.quota,
        "use_time": int(now - started),
        "is_stream": False,
        "channel_id": channel_id,
        "group": caller.group,
        "other": orjson.dumps({"model_price": q.price, "group_ratio": q.group_ratio}).decode(),
    }
    await hold.settle(
        Settlement(
            user_id=caller.user.id,
            token_id=caller.token.id,
            channel_id=channel_id,
            user_delta=0,
            token_delta=0,
            quota=q.quota,
            counted=True,
            log=log,
            username=caller.user.username,
            model_name=q.model,
        )
    )
