"""Periodic token budgets: a token with budget_period (day, week or month, in UTC) gets its
remain_quota set back to budget_quota when a new period starts.

Spending is the ledger's as for any limited token (remain_quota is the budget left); only the reset
is added. A beat task runs every minute; each token's reset for a period is claimed once across
all processes and nodes (billing/counters.claim_once), then applied as an edit of the token's
balance through the ledger (the database row and its mirror move by the same delta).
"""

from __future__ import annotations

import datetime as dt
import logging

from accounts.models import BUDGET_PERIODS, TOKEN_ENABLED, TOKEN_EXHAUSTED, Token
from billing import counters
from billing.services.credit import set_token_quota

log = logging.getLogger("newapi.billing")
# A claim outlives its period (at most 31 days) so it is never taken twice.
CLAIM_SECONDS = 40 * 86400
_claimed: set[str] = set()  # periods this process already saw claimed: no store round trip


def period_key(period: str, now: dt.datetime) -> str:
    """The name of the period `now` (UTC) falls in."""
    if period == "day":
        return now.strftime("%Y%m%d")
    if period == "week":
        year, week, _ = now.isocalendar()
        return f"{year}W{week:02d}"
    if period == "month":
        return now.strftime("%Y%m")
    raise ValueError(f"unknown budget period {period!r}")


def reset_due(now: dt.datetime | None = None) -> int:
    """Reset every budget whose current period has not been reset yet; returns how many."""
    now = now or dt.datetime.now(dt.UTC)
    done = 0
    rows = Token.live.filter(budget_period__in=BUDGET_PERIODS, budget_quota__gt=0).values_list(
        "id", "user_id", "budget_period", "budget_quota", "status"
    )
    for token_id, user_id, period, quota, status in rows:
        if not period or not quota:
            continue  # the query excludes these; the columns are nullable
        name = f"budget:{token_id}:{period}:{period_key(period, now)}"
        if name in _claimed:
            continue
        _claimed.add(name)
        if not counters.claim_once(name, CLAIM_SECONDS):
            continue
        set_token_quota(token_id, user_id, int(quota))
        if status == TOKEN_EXHAUSTED:  # spent out last period: usable again (save() tells every process)
            token = Token.objects.get(pk=token_id)
            token.status = TOKEN_ENABLED
            token.save(update_fields=["status"])
        done += 1
    if len(_claimed) > 100_000:
        _claimed.clear()
    if done:
        log.info("budgets: %d tokens reset for the new period", done)
    return done
