"""Per-user model request rate windows kept by the embedded ledger's owner (no Redis), so every
web worker counts against the same numbers (billing/ledger_owner.py answers these lines):

    Q window_ms uid total_max success_max -> 0 ticket | 1 | 2   (admit: 1 total cap, 2 success cap)
    S uid ticket                          -> 1                  (the admitted request succeeded)
    D uid ticket                          -> 1                  (it did not: its success slot is free)

Sliding windows of timestamps, as the Redis script keeps. An admitted request holds a success slot
until it ends, so concurrent requests cannot pass the success cap together; a slot whose request
never reported (its process died) lapses with the window.
"""

from __future__ import annotations

import itertools
import time
from collections import deque


class UserRates:
    def __init__(self) -> None:
        self.total: dict[int, deque[float]] = {}
        self.success: dict[int, deque[float]] = {}
        self.pending: dict[int, dict[int, float]] = {}  # uid -> ticket -> admitted at
        self.tickets = itertools.count(1)
        self.window = 60.0

    def _prune(self, uid: int, now: float) -> None:
        edge = now - self.window
        for table in (self.total, self.success):
            q = table.get(uid)
            while q and q[0] <= edge:
                q.popleft()
        pending = self.pending.get(uid)
        if pending:
            for ticket in [t for t, at in pending.items() if at <= edge]:
                del pending[ticket]

    def check(self, line: bytes) -> bytes:
        _, window_ms, uid_s, total_s, success_s = line.split()
        uid, total_max, success_max = int(uid_s), int(total_s), int(success_s)
        self.window = int(window_ms) / 1000
        now = time.monotonic()
        self._prune(uid, now)
        total = self.total.setdefault(uid, deque())
        pending = self.pending.setdefault(uid, {})
        if total_max > 0 and len(total) >= total_max:
            return b"1\n"
        if success_max > 0 and len(self.success.get(uid, ())) + len(pending) >= success_max:
            return b"2\n"
        total.append(now)
        ticket = next(self.tickets)
        pending[ticket] = now
        if len(self.total) > 100_000:  # users come and go: drop the idle ones
            self._forget_idle(now)
        return b"0 %d\n" % ticket

    def succeeded(self, line: bytes) -> bytes:
        _, uid_s, ticket_s = line.split()
        uid = int(uid_s)
        self.pending.get(uid, {}).pop(int(ticket_s), None)
        self.success.setdefault(uid, deque()).append(time.monotonic())
        return b"1\n"

    def dropped(self, line: bytes) -> bytes:
        _, uid_s, ticket_s = line.split()
        self.pending.get(int(uid_s), {}).pop(int(ticket_s), None)
        return b"1\n"

    def _forget_idle(self, now: float) -> None:
        for uid in list(self.total):
            self._prune(uid, now)
            if not self.total.get(uid) and not self.success.get(uid) and not self.pending.get(uid):
                self.total.pop(uid, None)
                self.success.pop(uid, None)
                self.pending.pop(uid, None)
