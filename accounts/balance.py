"""The port through which accounts moves a balance that billing also keeps.

users.quota and tokens.remain_quota are accounts' columns, but billing keeps a mirror of them
(Redis, or the embedded ledger) and the log lines that go with a change. accounts must not import
billing, so billing installs its implementation at start-up (BillingConfig.ready) and accounts
calls it here; without billing installed, a balance edit fails loudly instead of skipping the mirror.
"""

from __future__ import annotations

from typing import Protocol


class BalanceKeeper(Protocol):
    def credit_user(self, user_id: int, delta: int) -> None:
        """Add `delta` to users.quota and its mirror."""

    def credited_elsewhere(self, user_id: int, delta: int) -> None:
        """The caller's own UPDATE already added `delta` to users.quota: move the mirror to match."""

    def set_user_quota(self, user_id: int, wanted: int) -> int | None:
        """users.quota := wanted, as a delta in the mirror; returns the value replaced (None: no user)."""

    def credit_token(self, token_id: int, token_key: str, delta: int, *, user_id: int = 0) -> None:
        """Add `delta` to tokens.remain_quota and its mirror."""

    def set_token_quota(self, token_id: int, user_id: int, wanted: int) -> int | None:
        """tokens.remain_quota := wanted, as a delta in the mirror; returns the value replaced."""

    def drop_token_mirror(self, token_id: int) -> None:
        """A token turned limited: its mirror, not kept while unlimited, reloads from the row."""

    def log_quota_edit(self, user_id: int, username: str, old: int, new: int) -> None:
        """Record an admin's edit of a user's quota in the user's log."""


_keeper: BalanceKeeper | None = None


def install(keeper: BalanceKeeper) -> None:
    global _keeper
    _keeper = keeper


def keeper() -> BalanceKeeper:
    if _keeper is None:
        raise RuntimeError("no balance keeper installed: is billing in INSTALLED_APPS?")
    return _keeper
