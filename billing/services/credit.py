"""Quota changes made outside the relay (redeem, admin edits, aff transfer, invitations).

This module is the balance keeper accounts calls through accounts.balance (installed in
BillingConfig.ready), so its functions keep the signatures of accounts.balance.BalanceKeeper.

They go through billing.ledger so the Redis balance mirror stays in step with the database,
and then tell every process to drop its cached copy of the row (queryset updates send no signals)
and its "recently seen balance" (the ledger's trusted rule must not outlive a lowered balance).
"""

from __future__ import annotations

from typing import cast

from django.db.models import F

from accounts.models import Token, User
from billing import ledger
from billing.local_ledger import forget
from billing.models import LOG_MANAGE
from newapi_site import bus
from newapi_site import redis as r
from newapi_site.money import log_quota

from .logs import record_log

_CAS_ATTEMPTS = 20


def forget_recent_balance(user_id: int) -> None:
    bus.publish(f"balance:{user_id}")


def credit_user(user_id: int, delta: int) -> None:
    if delta:
        ledger.credit_user(user_id, delta)
        bus.publish(f"user:{user_id}")
        forget_recent_balance(user_id)


def credited_elsewhere(user_id: int, delta: int) -> None:
    """The caller's own UPDATE already added `delta` to users.quota: move the mirror to match."""
    if delta:
        ledger.mirror_user_delta(user_id, delta)
        bus.publish(f"user:{user_id}")
        forget_recent_balance(user_id)


def credit_token(token_id: int, token_key: str, delta: int, *, user_id: int = 0) -> None:
    if delta:
        ledger.credit_token(token_id, delta)
        bus.publish(bus.token_topic(token_key))
        if user_id:
            forget_recent_balance(user_id)


def _compare_and_set(model: type[User] | type[Token], pk: int, column: str, wanted: int) -> int | None:
    """Set column to `wanted` only if it still holds the value just read; return that value.

    The Redis mirror must move by exactly the change the database saw: the DB can be ahead of
    Redis (holds in flight) or behind it (queued settlements), so Redis is moved by a delta and
    never overwritten with the DB value.
    """
    for _ in range(_CAS_ATTEMPTS):
        old = model.objects.filter(pk=pk).values_list(column, flat=True).first()
        if old is None:
            return None
        if old == wanted or model.objects.filter(pk=pk, **{column: old}).update(**{column: wanted}):
            return int(old)
    # Billing writes keep moving the row: fall back to a delta against the last value read.
    last = cast(int, old)  # the loop above returned on None
    model.objects.filter(pk=pk).update(**{column: F(column) + (wanted - last)})
    return int(last)


def set_user_quota(user_id: int, wanted: int) -> int | None:
    """users.quota := wanted, as a delta in the ledger. Returns the quota it replaced."""
    old = _compare_and_set(User, user_id, "quota", wanted)
    if old is not None and old != wanted:
        ledger.mirror_user_delta(user_id, wanted - old)
        bus.publish(f"user:{user_id}")
        forget_recent_balance(user_id)
    return old


def set_token_quota(token_id: int, user_id: int, wanted: int) -> int | None:
    """tokens.remain_quota := wanted, as a delta in the ledger. Returns the value it replaced."""
    old = _compare_and_set(Token, token_id, "remain_quota", wanted)
    if old is not None and old != wanted:
        ledger.mirror_token_delta(token_id, wanted - old)
        forget_recent_balance(user_id)
    return old


def drop_token_mirror(token_id: int) -> None:
    """A token that turns limited reloads its balance: while unlimited its mirror was not kept."""
    if r.redis_enabled():
        r.sync_redis().delete(ledger.token_key(token_id))
    else:
        forget(b"T", token_id)


def log_quota_edit(user_id: int, username: str, old: int, new: int) -> None:
    # One wording for the console and /api/user edits, so the log reads the same.
    record_log(user_id, LOG_MANAGE, f"管理员将用户额度从 {log_quota(old)}修改为 {log_quota(new)}", username)
