"""Balances as the database has them: what a ledger loads when it first meets a user or token."""

from __future__ import annotations

from accounts.models import Token, User


def load_user_balance(user_id: int) -> int:
    return int(User.objects.filter(pk=user_id).values_list("quota", flat=True).first() or 0)


def load_token_balance(token_id: int) -> int:
    return int(Token.objects.filter(pk=token_id).values_list("remain_quota", flat=True).first() or 0)
