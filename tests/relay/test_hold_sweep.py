"""Redis holds carry a deadline: one its process never closed is refunded by the sweeper, and a
request that settles after its hold was swept pays in full (nothing is refunded twice)."""

from __future__ import annotations

import pytest
from asgiref.sync import async_to_sync
from django.conf import settings
from django.test import override_settings

from billing import ledger
from billing.ledger import Account, sweep_holds, token_key, user_key
from billing.settlement import Settlement
from newapi_site import redis as r
from tests.conftest import live, make_token, make_user, settle

pytestmark = [live, pytest.mark.skipif(not settings.REDIS_CONN_STRING, reason="Redis holds")]


def _balances(user_id: int, token_id: int) -> tuple[int, int]:
    client = r.sync_redis()
    return int(client.get(user_key(user_id))), int(client.get(token_key(token_id)))


def _account(name: str) -> tuple[Account, int, int]:
    user = make_user(name, quota=10_000)
    token = make_token(user, unlimited_quota=False, remain_quota=5_000)
    return Account(user.pk, token.pk, True), user.pk, token.pk


def _charge(acct: Account, quota: int) -> Settlement:
    return Settlement(user_id=acct.user_id, token_id=acct.token_id, channel_id=0, user_delta=0, token_delta=0,
                      quota=quota, counted=True)


def test_an_abandoned_hold_is_refunded_after_its_deadline_and_only_then():
    acct, uid, tid = _account("sw1")
    async_to_sync(ledger.reserve)(acct, 300)  # its worker "dies": never settled nor refunded
    assert _balances(uid, tid) == (9_700, 4_700)
    sweep_holds()
    assert _balances(uid, tid) == (9_700, 4_700)  # not due yet
    with override_settings(BILLING_HOLD_SECONDS=-5):
        async_to_sync(ledger.reserve)(acct, 200)
    assert _balances(uid, tid) == (9_500, 4_500)
    assert sweep_holds() == 1
    assert _balances(uid, tid) == (9_700, 4_700)
    assert sweep_holds() == 0


def test_settling_or_refunding_after_the_sweep_never_refunds_twice():
    acct, uid, tid = _account("sw2")
    with override_settings(BILLING_HOLD_SECONDS=-5):
        slow = async_to_sync(ledger.reserve)(acct, 400)
        gone = async_to_sync(ledger.reserve)(acct, 100)
    assert _balances(uid, tid) == (9_500, 4_500)
    assert sweep_holds() == 2
    assert _balances(uid, tid) == (10_000, 5_000)
    async_to_sync(slow.settle)(_charge(acct, 150))  # a long request still finishing: charged in full
    async_to_sync(gone.refund)()  # already refunded by the sweep: nothing more
    assert _balances(uid, tid) == (9_850, 4_850)
    settle()
    from accounts.models import Token, User

    assert User.objects.get(pk=uid).quota == 9_850
    assert Token.objects.get(pk=tid).remain_quota == 4_850


def test_a_settled_hold_is_not_swept():
    acct, uid, tid = _account("sw3")
    with override_settings(BILLING_HOLD_SECONDS=-5):
        hold = async_to_sync(ledger.reserve)(acct, 400)
    async_to_sync(hold.settle)(_charge(acct, 50))
    assert sweep_holds() == 0
    assert _balances(uid, tid) == (9_950, 4_950)
