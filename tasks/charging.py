"""Fixed-price charging for async tasks (Midjourney and Suno actions).

A task action costs `int(ModelPrice[model] × group ratio × QuotaPerUnit)`. The quota is reserved
before the upstream call and settled (with a consume log named after the action's model) only when
the upstream accepted the task; otherwise the reservation is returned.
"""

from __future__ import annotations

from dataclasses import dataclass

from billing import ledger, notifications
from billing.consume import task_bill
from billing.ledger import Account, Hold, QuotaError
from billing.pricing import group_ratio, model_price, quota_per_unit
from relay.auth import Caller
from relay.metering.charge import quota_error

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
    """Settle the hold at the quoted price, logged under the action's model; a balance left under
    the user's threshold is notified, as after a text request."""
    bill = task_bill(
        caller,
        channel_id,
        model=q.model,
        model_price=q.price,
        group_ratio=q.group_ratio,
        quota=q.quota,
        action=action,
        task_id=task_id,
        started=started,
    )
    balance = await hold.settle(bill)
    await notifications.after_charge(caller.user.id, caller.user.setting, bill.quota, balance)
