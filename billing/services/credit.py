"""Quota changes made outside the relay (redeem, admin edits, aff transfer, invitations).

They go through billing.ledger so the Redis balance mirror stays in step with the database,
and then tell every process to drop its cached copy of the row (queryset updates send no signals).
"""

from __future__ import annotations

from newapi_site import bus

from billing import ledger


def credit_user(user_id: int, delta: int) -> None:
    if delta:
        ledger.credit_user(user_id, delta)
        bus.publish(f"user:{user_id}")


def credit_token(token_id: int, token_key: str, delta: int) -> None:
    if delta:
        ledger.credit_token(token_id, delta)
        bus.publish(f"token:{token_key}")
