"""Quota reservation and settlement: pre-consume, settle, refund — each exactly once.

Two implementations behind one interface:
- RedisLedger (REDIS_CONN_STRING set): balances mirrored in Redis and changed by Lua scripts
  (atomic check-and-decrement, so racing requests cannot overspend or lose updates); the
  database is written in batches from a Redis queue by billing.writer.
- DbLedger (embedded default): one conditional `UPDATE … WHERE quota >= n` per balance.

A request holds a `Hold`; `settle` or `refund` on it acts once, whatever happens after.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass

from asgiref.sync import sync_to_async
from django.db import transaction
from django.db.models import F
from redis.exceptions import NoScriptError

from newapi_site import bus
from newapi_site import redis as r

from .settlement import Settlement, apply_settlements


class QuotaError(Exception):
    """kind: user_empty | user_insufficient | token_exhausted | token_insufficient"""

    def __init__(self, kind: str, balance: int, need: int) -> None:
        super().__init__(kind)
        self.kind = kind
        self.balance = balance
        self.need = need


@dataclass(slots=True)
class Account:
    user_id: int
    token_id: int
    token_limited: bool


def user_key(user_id: int) -> str:
    return r.key("bal", "u", user_id)


def token_key(token_id: int) -> str:
    return r.key("bal", "t", token_id)


def queue_key() -> str:
    return r.key("billing", "queue")


# -- Redis ---------------------------------------------------------------------------------
_RESERVE = """
local u = redis.call('GET', KEYS[1])
if not u then return {-1, 0} end
local amount = tonumber(ARGV[1])
local limited = ARGV[2] == '1'
local t = nil
if limited then
  t = redis.call('GET', KEYS[2])
  if not t then return {-2, 0} end
  t = tonumber(t)
  if t <= 0 then return {-5, t} end
end
u = tonumber(u)
if u <= 0 then return {-3, u} end
if u < amount then return {-4, u} end
if limited and t < amount then return {-6, t} end
if amount > 0 then
  redis.call('DECRBY', KEYS[1], amount)
  if limited then redis.call('DECRBY', KEYS[2], amount) end
end
if limited then return {1, u - amount, t - amount} end
return {1, u - amount, -1}
"""

# Apply the final difference (charge - reserved) and queue the DB write in one atomic step.
_COMMIT = """
local diff = tonumber(ARGV[1])
local u, t = -1, -1
if redis.call('EXISTS', KEYS[1]) == 1 then u = redis.call('DECRBY', KEYS[1], diff) end
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then t = redis.call('DECRBY', KEYS[2], diff) end
redis.call('RPUSH', KEYS[3], ARGV[3])
return {u, t}
"""

_INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return nil
"""

async def _run(script: str, numkeys: int, *args: object):
    """EVALSHA (the script is sent once per Redis server, not with every request), EVAL on a miss,
    on the loop's pipelined connection (see newapi_site/redis_pipe.py)."""
    client = r.pipelined()
    sha = _SHAS.get(script)
    if sha is None:
        sha = _SHAS[script] = hashlib.sha1(script.encode()).hexdigest()
    try:
        return await client.execute("EVALSHA", sha, numkeys, *args)
    except NoScriptError:
        return await client.execute("EVAL", script, numkeys, *args)


_SHAS: dict[str, str] = {}

_ERRORS = {-3: "user_empty", -4: "user_insufficient", -5: "token_exhausted", -6: "token_insufficient"}


def _load_user_balance(user_id: int) -> int:
    from accounts.models import User

    return int(User.objects.filter(pk=user_id).values_list("quota", flat=True).first() or 0)


def _load_token_balance(token_id: int) -> int:
    from accounts.models import Token

    return int(Token.objects.filter(pk=token_id).values_list("remain_quota", flat=True).first() or 0)


# New API's "trusted" rule (relay.md §9.1): when the balance is over 100× the estimate, nothing
# is held up front. We apply it only to balances this process saw within TRUST_SECONDS; the
# final charge is still applied atomically at commit, so nothing is lost, only not pre-held.
TRUST_FACTOR = 100
TRUST_SECONDS = 2.0


class RedisLedger:
    def __init__(self) -> None:
        # (user_id, token_id) -> (user balance, token balance or -1, monotonic time seen)
        self._seen: dict[tuple[int, int], tuple[int, int, float]] = {}
        # An edited balance (admin, token edit, redeem) must be checked again at the next request.
        bus.subscribe("balance:", self._forget_seen)

    def _forget_seen(self, event: str) -> None:
        if event == "all":
            self._seen.clear()
            return
        try:
            user_id = int(event.removeprefix("balance:"))
        except ValueError:
            return
        for pair in list(self._seen):  # a snapshot: the event loop keeps adding entries
            if pair[0] == user_id:
                self._seen.pop(pair, None)

    def _trusted(self, acct: Account, amount: int) -> bool:
        seen = self._seen.get((acct.user_id, acct.token_id))
        if seen is None or time.monotonic() - seen[2] > TRUST_SECONDS:
            return False
        margin = max(amount, 1) * TRUST_FACTOR
        return seen[0] > margin and (not acct.token_limited or seen[1] > margin)

    def _remember(self, acct: Account, user_balance: int, token_balance: int) -> None:
        self._seen[(acct.user_id, acct.token_id)] = (int(user_balance), int(token_balance), time.monotonic())

    async def reserve(self, acct: Account, amount: int) -> int:
        """Hold `amount` and return what was held (0 under the trusted rule)."""
        if self._trusted(acct, amount):
            return 0
        client = r.async_redis()
        keys = [user_key(acct.user_id), token_key(acct.token_id)]
        for _attempt in range(3):
            code, balance, *rest = await _run(_RESERVE, 2, *keys, amount, "1" if acct.token_limited else "0")
            if code == 1:
                self._remember(acct, balance, rest[0])
                return amount
            if code == -1:
                value = await sync_to_async(_load_user_balance)(acct.user_id)
                await client.set(keys[0], value, nx=True)
                continue
            if code == -2:
                value = await sync_to_async(_load_token_balance)(acct.token_id)
                await client.set(keys[1], value, nx=True)
                continue
            self._seen.pop((acct.user_id, acct.token_id), None)
            raise QuotaError(_ERRORS[code], int(balance), amount)
        raise RuntimeError("quota balance could not be loaded")

    async def release(self, acct: Account, amount: int) -> None:
        if amount <= 0:
            return
        client = r.async_redis()
        async with client.pipeline(transaction=True) as pipe:
            pipe.eval(_INCR_IF_EXISTS, 1, user_key(acct.user_id), amount)
            if acct.token_limited:
                pipe.eval(_INCR_IF_EXISTS, 1, token_key(acct.token_id), amount)
            await pipe.execute()

    async def commit(self, acct: Account, reserved: int, s: Settlement) -> None:
        # The DB never saw the reservation: it must receive the whole charge.
        s.user_delta = s.token_delta = -s.quota
        user_balance, token_balance = await _run(
            _COMMIT, 3, user_key(acct.user_id), token_key(acct.token_id), queue_key(),
            s.quota - reserved, "1" if acct.token_limited else "0", s.to_json(),
        )
        if user_balance >= 0:
            self._remember(acct, user_balance, token_balance)


# -- Database --------------------------------------------------------------------------
def _db_reserve(acct: Account, amount: int) -> None:
    from accounts.models import Token, User

    with transaction.atomic():
        ok = User.objects.filter(pk=acct.user_id, quota__gt=0, quota__gte=amount).update(quota=F("quota") - amount)
        if not ok:
            balance = _load_user_balance(acct.user_id)
            raise QuotaError("user_empty" if balance <= 0 else "user_insufficient", balance, amount)
        if acct.token_limited:
            ok = Token.objects.filter(pk=acct.token_id, remain_quota__gt=0, remain_quota__gte=amount).update(
                remain_quota=F("remain_quota") - amount, used_quota=F("used_quota") + amount
            )
            if not ok:
                balance = _load_token_balance(acct.token_id)
                # raising rolls back the user decrement above
                raise QuotaError("token_exhausted" if balance <= 0 else "token_insufficient", balance, amount)


def _db_release(acct: Account, amount: int) -> None:
    from accounts.models import Token, User

    with transaction.atomic():
        User.objects.filter(pk=acct.user_id).update(quota=F("quota") + amount)
        if acct.token_limited:
            Token.objects.filter(pk=acct.token_id).update(
                remain_quota=F("remain_quota") + amount, used_quota=F("used_quota") - amount
            )


class DbLedger:
    async def reserve(self, acct: Account, amount: int) -> int:
        # Runs even at zero cost: New API requires a positive balance for free models too.
        await sync_to_async(_db_reserve)(acct, amount)
        return amount

    async def release(self, acct: Account, amount: int) -> None:
        if amount > 0:
            await sync_to_async(_db_release)(acct, amount)

    async def commit(self, acct: Account, reserved: int, s: Settlement) -> None:
        # The reservation already wrote -reserved to the user (and to a limited token's row).
        s.user_delta = -(s.quota - reserved)
        s.token_delta = s.user_delta if acct.token_limited else -s.quota
        await sync_to_async(apply_settlements)([s])


_ledger: RedisLedger | DbLedger | None = None


def ledger() -> RedisLedger | DbLedger:
    global _ledger
    if _ledger is None:
        if r.redis_enabled():
            _ledger = RedisLedger()
        else:  # balances with one owner process, journaled write-behind (billing/local_ledger.py)
            from .local_ledger import LocalLedger

            _ledger = LocalLedger()
    return _ledger


class Hold:
    """Quota reserved for one request. settle() or refund() takes effect once; later calls do nothing."""

    __slots__ = ("acct", "amount", "done")

    def __init__(self, acct: Account, amount: int) -> None:
        self.acct = acct
        self.amount = amount
        self.done = False

    async def settle(self, s: Settlement) -> None:
        if self.done:
            return
        self.done = True
        await ledger().commit(self.acct, self.amount, s)

    async def refund(self) -> None:
        if self.done:
            return
        self.done = True
        await ledger().release(self.acct, self.amount)


async def reserve(acct: Account, amount: int) -> Hold:
    held = await ledger().reserve(acct, amount)
    return Hold(acct, held)


# -- credits from outside the relay (redeem, top-up, admin edits, task refunds) -------------
def credit_user(user_id: int, delta: int) -> None:
    """Add `delta` (may be negative) to a user's balance in the DB and in the Redis mirror."""
    from accounts.models import User

    User.objects.filter(pk=user_id).update(quota=F("quota") + delta)
    mirror_user_delta(user_id, delta)


def credit_token(token_id: int, delta: int) -> None:
    from accounts.models import Token

    Token.objects.filter(pk=token_id).update(remain_quota=F("remain_quota") + delta)
    mirror_token_delta(token_id, delta)


def mirror_user_delta(user_id: int, delta: int) -> None:
    if delta and r.redis_enabled():
        r.sync_redis().eval(_INCR_IF_EXISTS, 1, user_key(user_id), delta)
    elif delta:
        from .local_ledger import credit

        credit(b"U", user_id, delta)


def mirror_token_delta(token_id: int, delta: int) -> None:
    if delta and r.redis_enabled():
        r.sync_redis().eval(_INCR_IF_EXISTS, 1, token_key(token_id), delta)
    elif delta:
        from .local_ledger import credit

        credit(b"T", token_id, delta)
