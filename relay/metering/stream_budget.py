"""A stream's running cost against what its request holds.

Without max_tokens a request holds only PreConsumedQuota × ratio (nothing at all under the trusted
rule), while a stream may run for minutes. As output arrives its cost is estimated from the text
already in the translator (no tokenizer, no I/O per chunk); when the estimate passes what is held,
the hold grows, geometrically so a long stream asks the ledger only a few times, and always checked
against the balance. When the balance cannot cover what already arrived the stream is cut: the
client gets an error event, and what was delivered is billed.
"""

from __future__ import annotations

import asyncio
import math
from typing import TYPE_CHECKING

import orjson

from billing import ledger
from billing.ledger import QuotaError
from relay.errors import RelayError
from relay.metering import tokenizer
from relay.streaming import DONE, frame, frame_event

if TYPE_CHECKING:
    from relay.modes.job import Job

# A token is about 4 characters of English and 1 of CJK: 3 and 1 err towards cutting early.
ASCII_CHARS_PER_TOKEN = 3


class StreamBudget:
    __slots__ = (
        "covered",
        "enabled",
        "growing",
        "job",
        "limit",
        "parts",
        "per_token",
        "prompt_cost",
        "seen",
        "tokens",
    )

    def __init__(self, job: Job) -> None:
        price = job.price
        ratio = price.model_ratio * price.group_ratio
        self.job = job
        self.per_token = ratio * price.completion_ratio  # quota per completion token
        self.enabled = not price.use_price and self.per_token > 0
        prompt = job.prompt_tokens if job.prompt_tokens is not None else len(job.req.body) // 4 + 1
        self.prompt_cost = prompt * ratio
        # An unheld request (trusted rule) may spend its estimate before it must hold anything.
        self.covered = max(job.hold.amount, job.estimate)
        self.limit = self._limit()
        self.seen = 0
        self.tokens = 0.0
        self.parts: list[str] = []
        self.growing: asyncio.Future | None = None

    def _limit(self) -> float:
        return (self.covered - self.prompt_cost) / self.per_token if self.enabled else math.inf

    def over(self, parts: list[str]) -> bool:
        """Count the output added since the last call; True once it costs more than is covered."""
        if not self.enabled:
            return False
        self.parts = parts
        while self.seen < len(parts):
            part = parts[self.seen]
            self.seen += 1
            self.tokens += len(part) / ASCII_CHARS_PER_TOKEN if part.isascii() else len(part)
        return self.tokens > self.limit

    def cost(self) -> float:
        return self.prompt_cost + self.tokens * self.per_token

    async def extend(self) -> QuotaError | None:
        """Grow the hold past the cost so far; the QuotaError when the balance cannot pay it.
        Shielded: a client leaving mid-way must not strand a reservation outside the hold."""
        self.growing = asyncio.ensure_future(self._extend())
        return await asyncio.shield(self.growing)

    async def done(self) -> None:
        """Before the stream is billed: any growth under way has reached the hold."""
        if self.growing is not None and not self.growing.done():
            await asyncio.wait([self.growing])

    async def _extend(self) -> QuotaError | None:
        hold = self.job.hold
        cost = self.cost()
        try:
            await ledger.reserve_more(hold, math.ceil(max(cost, 2 * self.covered) - hold.amount))
        except QuotaError as short:
            # The estimate errs high: before cutting, count what arrived exactly (once per
            # refusal; the margin left shrinks each time, so a stream does this only a few times).
            self.tokens = float(tokenizer.count_text("".join(self.parts), self.job.model))
            cost = self.cost()
            if cost <= self.covered:
                return None
            # Not enough for a doubling: what is left still does if it covers what arrived.
            if short.balance <= 0 or hold.amount + short.balance < cost:
                return short
            try:
                await ledger.reserve_more(hold, short.balance)
            except QuotaError as again:
                return again
        self.covered = hold.amount
        self.limit = self._limit()
        return None


def cut_frames(mode: str, err: RelayError) -> list[bytes]:
    """The event that tells a client its stream was stopped, in its API's stream format."""
    if mode == "claude":
        body = {"type": "error", "error": {"type": err.type or "new_api_error", "message": err.message}}
        return [frame_event("error", orjson.dumps(body))]
    if mode == "gemini":  # Google's error shape
        status = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED"}.get(err.status, "RESOURCE_EXHAUSTED")
        return [
            frame(orjson.dumps({"error": {"code": err.status, "message": err.message, "status": status}}))
        ]
    if mode == "responses":
        error = {"type": "error", "code": err.code, "message": err.message, "param": None}
        return [frame_event("error", orjson.dumps(error))]
    body = {"error": {"message": err.message, "type": err.type, "code": err.code}}
    return [frame(orjson.dumps(body)), DONE]
