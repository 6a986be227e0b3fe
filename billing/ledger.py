"""Quota reservation and settlement: pre-consume, settle, refund — each exactly once.

Two implementations behind one interface:
- RedisLedger (REDIS_CONN_STRING set): balances mirrored in Redis and changed by Lua scripts
  (atomic check-and-decrement, so racing requests cannot overspend or lose updates); the
  database is written in batches from a Redis queue by billing.writer.
- DbLedger (embedded default): one conditional `UPDATE … WHERE quota >= n` per balance.

A request holds a `Hold`; `settle` or `refund` on it acts once, whatever happens after.

In Redis a hold is recorded (amount, balance keys, deadline) by the same script that takes it and
removed by the one that settles or returns it. A hold its process never closed (a killed web
worker) is refunded by `sweep_holds` after BILLING_HOLD_SECONDS; a request that still settles
after its hold was swept pays the whole charge then, so nothing is refunded twice.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.db.models import F
from redis.exceptions import NoScriptError

from accounts.models import Token, User
from newapi_site import bus
from newapi_site import redis as r
from newapi_site.options import options

from .balances import load_token_balance, load_user_balance
from .settlement import Settlement, apply_settlements, new_id

log = logging.getLogger("newapi.billing")


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


def holds_key() -> str:
    return r.key("billing", "holds")


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
  redis.call('HSET', KEYS[3], ARGV[3], ARGV[1] .. '\t' .. ARGV[4] .. '\t' .. KEYS[1] .. '\t' .. (limited and KEYS[2] or ''))
end
if limited then return {1, u - amount, t - amount} end
return {1, u - amount, -1}
"""

# Close the hold records ARGV[5..] (one already swept was refunded: its amount is charged again
# here), apply the final difference (charge - still held) and queue the DB write, in one step.
_COMMIT = """
local held = tonumber(ARGV[4])
for i = 5, #ARGV do
  local h = redis.call('HGET', KEYS[4], ARGV[i])
  if h then
    held = held + tonumber(string.match(h, '^[^\t]*'))
    redis.call('HDEL', KEYS[4], ARGV[i])
  end
end
local diff = tonumber(ARGV[1]) - held
local u, t = -1, -1
if redis.call('EXISTS', KEYS[1]) == 1 then u = redis.call('DECRBY', KEYS[1], diff) end
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then t = redis.call('DECRBY', KEYS[2], diff) end
redis.call('RPUSH', KEYS[3], ARGV[3])
return {u, t}
"""

# Return what is still held: records ARGV[3..] (a swept one was refunded already) plus ARGV[2]
# held without a record.
_RELEASE = """
local back = tonumber(ARGV[2])
for i = 3, #ARGV do
  local h = redis.call('HGET', KEYS[3], ARGV[i])
  if h then
    back = back + tonumber(string.match(h, '^[^\t]*'))
    redis.call('HDEL', KEYS[3], ARGV[i])
  end
end
if back > 0 then
  if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('INCRBY', KEYS[1], back) end
  if ARGV[1] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then redis.call('INCRBY', KEYS[2], back) end
end
return back
"""

# Refund the holds whose deadline has passed (ARGV[1]). Holds live for milliseconds to minutes,
# so the hash stays small; a sweep every few seconds reads it whole.
_SWEEP = """
local flat = redis.call('HGETALL', KEYS[1])
local now = tonumber(ARGV[1])
local n = 0
for i = 1, #flat, 2 do
  local amount, deadline, ukey, tkey = string.match(flat[i + 1], '^([^\t]*)\t([^\t]*)\t([^\t]*)\t([^\t]*)$')
  if deadline and tonumber(deadline) < now then
    if redis.call('EXISTS', ukey) == 1 then redis.call('INCRBY', ukey, amount) end
    if tkey ~= '' and redis.call('EXISTS', tkey) == 1 then redis.call('INCRBY', tkey, amount) end
    redis.call('HDEL', KEYS[1], flat[i])
    n = n + 1
  end
end
return n
"""

_INCR_IF_EXISTS = """
if redis.call('EXISTS', KEYS[1]) == 1 then return redis.call('INCRBY', KEYS[1], ARGV[1]) end
return nil
"""


async def _run(script: str, numkeys: int, *args: object) -> Any:
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


# New API's "trusted" rule (relay.md §9.1): when the balance is over 100× the estimate, nothing
# is held up front. We apply it only to balances this process saw within TRUST_SECONDS; the
# final charge is still applied atomically at commit, so nothing is lost, only not pre-held.
TRUST_FACTOR = 100
TRUST_SECONDS = 2.0


class RedisLedger:
    def __init__(self) -> None:
        # (user_id, token_id) -> (user balance, token balance or -1, monotonic time seen)
        self._seen: dict[tuple[int, int], tuple[int, int, float]] = {}
        self._unheld: dict[int, int] = {}  # user_id -> requests running unheld under the trusted rule
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
        """The trusted rule; a request it admits counts as unheld until its Hold closes."""
        seen = self._seen.get((acct.user_id, acct.token_id))
        if seen is None or time.monotonic() - seen[2] > TRUST_SECONDS:
            return False
        margin = max(amount, 1) * TRUST_FACTOR
        if seen[0] <= margin or (acct.token_limited and seen[1] <= margin):
            return False
        if amount <= 0:
            return True  # nothing to hold, nothing exposed
        # Unheld requests are where an overdraft comes from: per user, only as many at once as
        # keep their estimates within 1/TRUST_FACTOR of the balance, and never over the option.
        running = self._unheld.get(acct.user_id, 0) + 1
        balance = min(seen[0], seen[1]) if acct.token_limited else seen[0]
        if running * margin >= balance or running > options.get_int("TrustedConcurrencyLimit", 64):
            return False
        self._unheld[acct.user_id] = running
        return True

    def unheld_done(self, acct: Account) -> None:
        left = self._unheld.get(acct.user_id, 0) - 1
        if left > 0:
            self._unheld[acct.user_id] = left
        else:
            self._unheld.pop(acct.user_id, None)

    def distrust(self, acct: Account) -> None:
        """The next reserve for this account is checked against the balance whatever was seen."""
        self._seen.pop((acct.user_id, acct.token_id), None)

    def _remember(self, acct: Account, user_balance: int, token_balance: int) -> None:
        self._seen[(acct.user_id, acct.token_id)] = (int(user_balance), int(token_balance), time.monotonic())

    async def reserve(self, acct: Account, amount: int, hold_id: str = "") -> int:
        """Hold `amount` and return what was held (0 under the trusted rule); a hold is recorded
        under `hold_id` until commit or release (or the sweeper) closes it."""
        if self._trusted(acct, amount):
            return 0
        client = r.async_redis()
        keys = [user_key(acct.user_id), token_key(acct.token_id), holds_key()]
        hold_id = hold_id or new_id()
        deadline = int(time.time()) + settings.BILLING_HOLD_SECONDS
        for _attempt in range(3):
            code, balance, *rest = await _run(
                _RESERVE, 3, *keys, amount, "1" if acct.token_limited else "0", hold_id, deadline
            )
            if code == 1:
                self._remember(acct, balance, rest[0])
                return amount
            if code == -1:
                value = await sync_to_async(load_user_balance)(acct.user_id)
                await client.set(keys[0], value, nx=True)
                continue
            if code == -2:
                value = await sync_to_async(load_token_balance)(acct.token_id)
                await client.set(keys[1], value, nx=True)
                continue
            self._seen.pop((acct.user_id, acct.token_id), None)
            raise QuotaError(_ERRORS[code], int(balance), amount)
        raise RuntimeError("quota balance could not be loaded")

    async def release(self, acct: Account, amount: int, ids: Sequence[str] = (), recorded: int = 0) -> None:
        """Return `amount`: `recorded` of it under the hold records `ids`, the rest unrecorded."""
        if amount <= 0:
            return
        await _run(
            _RELEASE,
            3,
            user_key(acct.user_id),
            token_key(acct.token_id),
            holds_key(),
            "1" if acct.token_limited else "0",
            amount - recorded,
            *ids,
        )

    async def commit(
        self, acct: Account, reserved: int, s: Settlement, ids: Sequence[str] = (), recorded: int = 0
    ) -> int | None:
        # The DB never saw the reservation: it must receive the whole charge.
        s.user_delta = s.token_delta = -s.quota
        if not s.id:
            s.id = new_id()  # the writer records it with the charge: a re-applied batch skips it
        user_balance, token_balance = await _run(
            _COMMIT,
            4,
            user_key(acct.user_id),
            token_key(acct.token_id),
            queue_key(),
            holds_key(),
            s.quota,
            "1" if acct.token_limited else "0",
            s.to_json(),
            reserved - recorded,
            *ids,
        )
        if user_balance >= 0:
            self._remember(acct, user_balance, token_balance)
            return int(user_balance)
        return None  # the balance was not loaded here: unknown


# -- Database --------------------------------------------------------------------------
def _db_reserve(acct: Account, amount: int) -> None:
    with transaction.atomic():
        ok = User.objects.filter(pk=acct.user_id, quota__gt=0, quota__gte=amount).update(
            quota=F("quota") - amount
        )
        if not ok:
            balance = load_user_balance(acct.user_id)
            raise QuotaError("user_empty" if balance <= 0 else "user_insufficient", balance, amount)
        if acct.token_limited:
            ok = Token.objects.filter(pk=acct.token_id, remain_quota__gt=0, remain_quota__gte=amount).update(
                remain_quota=F("remain_quota") - amount, used_quota=F("used_quota") + amount
            )
            if not ok:
                balance = load_token_balance(acct.token_id)
                # raising rolls back the user decrement above
                raise QuotaError("token_exhausted" if balance <= 0 else "token_insufficient", balance, amount)


def _db_release(acct: Account, amount: int) -> None:
    with transaction.atomic():
        User.objects.filter(pk=acct.user_id).update(quota=F("quota") + amount)
        if acct.token_limited:
            Token.objects.filter(pk=acct.token_id).update(
                remain_quota=F("remain_quota") + amount, used_quota=F("used_quota") - amount
            )


class DbLedger:
    async def reserve(self, acct: Account, amount: int, hold_id: str = "") -> int:
        # Runs even at zero cost: New API requires a positive balance for free models too.
        await sync_to_async(_db_reserve)(acct, amount)
        return amount

    async def release(self, acct: Account, amount: int, ids: Sequence[str] = (), recorded: int = 0) -> None:
        if amount > 0:
            await sync_to_async(_db_release)(acct, amount)

    async def commit(
        self, acct: Account, reserved: int, s: Settlement, ids: Sequence[str] = (), recorded: int = 0
    ) -> int | None:
        # The reservation already wrote -reserved to the user (and to a limited token's row).
        s.user_delta = -(s.quota - reserved)
        s.token_delta = s.user_delta if acct.token_limited else -s.quota
        await sync_to_async(apply_settlements)([s])
        return None


_ledger: RedisLedger | DbLedger | None = None
# The embedded set-up's ledger (billing/local_ledger.py) builds on RedisLedger, so rather than being
# imported here it registers itself when billing starts (BillingConfig.ready).
_embedded_ledger: Callable[[], RedisLedger] | None = None
_embedded_credit: Callable[[bytes, int, int], None] | None = None


def use_embedded(factory: Callable[[], RedisLedger], credit: Callable[[bytes, int, int], None]) -> None:
    global _embedded_ledger, _embedded_credit
    _embedded_ledger, _embedded_credit = factory, credit


def _credit_embedded(kind: bytes, row_id: int, delta: int) -> None:
    if _embedded_credit is None:
        raise RuntimeError("the embedded ledger is not loaded (billing's AppConfig loads it)")
    _embedded_credit(kind, row_id, delta)


def ledger() -> RedisLedger | DbLedger:
    global _ledger
    if _ledger is None:
        if r.redis_enabled():
            _ledger = RedisLedger()
        elif _embedded_ledger is not None:  # one owner process, journaled write-behind
            _ledger = _embedded_ledger()
        else:
            raise RuntimeError("the embedded ledger is not loaded (billing's AppConfig loads it)")
    return _ledger


class Hold:
    """Quota reserved for one request. settle() or refund() takes effect once; later calls do nothing.

    `ids` name the ledger's records of what is held (Redis), `recorded` is their total; the rest
    of `amount` has no record (a Hold built by hand)."""

    __slots__ = ("acct", "amount", "done", "ids", "recorded", "unheld")

    def __init__(self, acct: Account, amount: int, ids: list[str] | None = None, recorded: int = 0) -> None:
        self.acct = acct
        self.amount = amount
        self.done = False
        self.ids = ids or []
        self.recorded = recorded
        self.unheld = False  # admitted by the trusted rule: counted until it closes

    def absorb(self, other: Hold) -> None:
        """Take over another hold of the same account, to settle or refund both at once."""
        if other.done:
            return
        other.done = True
        self.amount += other.amount
        self.ids += other.ids
        self.recorded += other.recorded

    async def settle(self, s: Settlement) -> int | None:
        """The user's balance after the charge, when the ledger knows it."""
        if self.done:
            return None
        self.done = True
        self._close_unheld()
        return await ledger().commit(self.acct, self.amount, s, self.ids, self.recorded)

    async def refund(self) -> None:
        if self.done:
            return
        self.done = True
        self._close_unheld()
        await ledger().release(self.acct, self.amount, self.ids, self.recorded)

    def _close_unheld(self) -> None:
        if self.unheld:
            self.unheld = False
            # only RedisLedger (and LocalLedger, its subclass) admits unheld requests
            cast(RedisLedger, ledger()).unheld_done(self.acct)


async def reserve(acct: Account, amount: int) -> Hold:
    hold = await _reserve(acct, amount)
    hold.unheld = amount > 0 and hold.amount == 0  # what the trusted rule counted
    return hold


async def _reserve(acct: Account, amount: int) -> Hold:
    book = ledger()
    if isinstance(book, RedisLedger):
        hold_id = new_id()
        held = await book.reserve(acct, amount, hold_id)
        return Hold(acct, held, [hold_id], held) if held > 0 else Hold(acct, 0)
    return Hold(acct, await book.reserve(acct, amount))


async def reserve_more(hold: Hold, amount: int) -> None:
    """Hold `amount` more for a running request (its cost passed what it holds), checked against
    the balance: never under the trusted rule. Raises QuotaError when the balance cannot."""
    book = ledger()
    if isinstance(book, RedisLedger):
        book.distrust(hold.acct)
    hold.absorb(await _reserve(hold.acct, amount))


def sweep_holds() -> int:
    """Refund holds past their deadline (their request's process is gone); returns how many."""
    if not r.redis_enabled():
        return 0
    swept = int(r.sync_redis().eval(_SWEEP, 1, holds_key(), int(time.time())))
    if swept:
        log.warning("billing: %d holds past their deadline refunded", swept)
    return swept


# -- credits from outside the relay (redeem, top-up, admin edits, task refunds) -------------
def credit_user(user_id: int, delta: int) -> None:
    """Add `delta` (may be negative) to a user's balance in the DB and in the Redis mirror."""
    User.objects.filter(pk=user_id).update(quota=F("quota") + delta)
    mirror_user_delta(user_id, delta)


def credit_token(token_id: int, delta: int) -> None:
    Token.objects.filter(pk=token_id).update(remain_quota=F("remain_quota") + delta)
    mirror_token_delta(token_id, delta)


def mirror_user_delta(user_id: int, delta: int) -> None:
    if delta and r.redis_enabled():
        r.sync_redis().eval(_INCR_IF_EXISTS, 1, user_key(user_id), delta)
    elif delta:
        _credit_embedded(b"U", user_id, delta)


def mirror_token_delta(token_id: int, delta: int) -> None:
    if delta and r.redis_enabled():
        r.sync_redis().eval(_INCR_IF_EXISTS, 1, token_key(token_id), delta)
    elif delta:
        _credit_embedded(b"T", token_id, delta)
