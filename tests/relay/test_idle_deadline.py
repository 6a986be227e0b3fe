"""relay.streaming.IdleDeadline: the stream idle timeout without a task per chunk."""

from __future__ import annotations

import asyncio
import time

import pytest

from relay.streaming import IdleDeadline


async def ticking(gaps: list[float]):
    for gap in gaps:
        await asyncio.sleep(gap)
        yield gap


def run(coro):
    return asyncio.run(coro)


def test_items_that_keep_coming_never_time_out():
    async def main() -> list[float]:
        deadline = IdleDeadline(0.2)
        items = ticking([0.12] * 6).__aiter__()  # 0.72 s in all, never 0.2 s idle
        got = []
        try:
            while True:
                got.append(await deadline.next(items))
        except StopAsyncIteration:
            return got
        finally:
            deadline.close()

    assert len(run(main())) == 6


def test_a_gap_longer_than_the_timeout_raises_timeout_error_after_the_timeout():
    async def main() -> float:
        deadline = IdleDeadline(0.2)
        items = ticking([0.01, 5]).__aiter__()
        assert await deadline.next(items) == 0.01
        started = time.monotonic()
        with pytest.raises(TimeoutError):
            await deadline.next(items)
        deadline.close()
        assert asyncio.current_task().cancelling() == 0  # the timeout's own cancel was taken back
        return time.monotonic() - started

    assert 0.18 <= run(main()) < 1


def test_time_spent_between_items_does_not_count():
    async def main() -> int:
        deadline = IdleDeadline(0.2)
        items = ticking([0.01, 0.01, 0.01]).__aiter__()
        count = 0
        try:
            while True:
                await deadline.next(items)
                count += 1
                await asyncio.sleep(0.3)  # the consumer is busy: not an idle upstream
        except StopAsyncIteration:
            return count
        finally:
            deadline.close()

    assert run(main()) == 3


def test_an_outside_cancel_stays_a_cancel():
    async def main() -> None:
        deadline = IdleDeadline(10)
        items = ticking([5]).__aiter__()
        task = asyncio.current_task()
        asyncio.get_running_loop().call_later(0.05, task.cancel)
        try:
            await deadline.next(items)
        finally:
            deadline.close()

    with pytest.raises(asyncio.CancelledError):
        run(main())
