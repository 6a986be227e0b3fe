"""The quota ledger directly: reserve, settle and refund act once; racing reservations never overspend."""

from __future__ import annotations

import asyncio

import pytest
from asgiref.sync import async_to_sync

from billing import ledger
from billing.ledger import Account, QuotaError
from billing.settlement import Settlement
from tests.conftest import live, make_token, make_user, settle

pytestmark = [live, pytest.mark.relay]


def _settlement(user, token, quota: int) -> Settlement:
    return Settlement(user_id=user.pk, token_id=token.pk, channel_id=0, user_delta=0, token_delta=0, quota=quota, counted=True)


def test_hold_settles_and_refunds_once():
    user = make_user("lena", quota=1000)
    token = make_token(user, unlimited_quota=False, remain_quota=500)
    acct = Account(user.pk, token.pk, True)

    async def run() -> None:
        hold = await ledger.reserve(acct, 100)
        await hold.settle(_settlement(user, token, 40))
        await hold.settle(_settlement(user, token, 40))  # ignored
        await hold.refund()  # ignored
        other = await ledger.reserve(acct, 100)
        await other.refund()
        await other.refund()  # ignored

    async_to_sync(run)()
    settle()
    user.refresh_from_db()
    token.refresh_from_db()
    assert (user.quota, token.remain_quota, token.used_quota) == (960, 460, 40)


def test_racing_reservations_never_overspend():
    user = make_user("moe", quota=1000)
    token = make_token(user, unlimited_quota=False, remain_quota=250)
    acct = Account(user.pk, token.pk, True)

    async def run() -> list[bool]:
        async def one() -> bool:
            try:
                await ledger.reserve(acct, 100)
            except QuotaError:
                return False
            return True

        return await asyncio.gather(*(one() for _ in range(10)))

    results = async_to_sync(run)()
    assert results.count(True) == 2  # 250 holds two reservations of 100, never three


def test_new_row_with_a_reused_id_does_not_inherit_a_balance():
    user = make_user("ned", quota=500)
    token = make_token(user)
    acct = Account(user.pk, token.pk, False)
    async_to_sync(ledger.reserve)(acct, 100)
    user_id = user.pk
    user.delete()
    again = make_user("ned2", quota=50, id=user_id)
    hold = async_to_sync(ledger.reserve)(Account(again.pk, token.pk, False), 50)
    assert hold.amount == 50
    with pytest.raises(QuotaError):
        async_to_sync(ledger.reserve)(Account(again.pk, token.pk, False), 1)


def test_trusted_rule_skips_the_hold_but_never_the_charge():
    """Over 100× the estimate (seen < 2 s ago) nothing is pre-held, as in New API; the charge stays exact."""
    user = make_user("olga", quota=1_000_000)
    token = make_token(user, unlimited_quota=False, remain_quota=500_000)
    acct = Account(user.pk, token.pk, True)

    async def run() -> list[int]:
        held = []
        for _ in range(3):
            hold = await ledger.reserve(acct, 100)
            held.append(hold.amount)
            await hold.settle(_settlement(user, token, 40))
        return held

    held = async_to_sync(run)()
    assert held == [100, 0, 0]  # the first call saw the balance; the next two trust it
    settle()
    user.refresh_from_db()
    token.refresh_from_db()
    assert (user.quota, token.remain_quota, token.used_quota) == (1_000_000 - 120, 500_000 - 120, 120)
