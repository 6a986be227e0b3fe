"""The one place that reads and writes Server-Sent Events."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any, TypeVar, cast

T = TypeVar("T")

SSE_HEADERS = [
    (b"content-type", b"text/event-stream"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
DONE = b"data: [DONE]\n\n"
MAX_LINE = 10 * 1024 * 1024


def frame(data: bytes) -> bytes:
    return b"data: " + data + b"\n\n"


def frame_event(event: str, data: bytes) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + data + b"\n\n"


async def iter_events(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """Yield (event name, data) for each SSE event as soon as its line is complete.

    Multi-line data is joined with newlines; comments and blank keep-alives are skipped.
    """
    buffer = b""
    event = ""
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > MAX_LINE and b"\n" not in buffer:
            raise ValueError("SSE line too long")
        while True:
            nl = buffer.find(b"\n")
            if nl < 0:
                break
            line = buffer[:nl].rstrip(b"\r")
            buffer = buffer[nl + 1 :]
            if not line:
                event = ""
                continue
            if line.startswith(b"data:"):
                yield event, line[5:].lstrip(b" ")
            elif line.startswith(b"event:"):
                event = line[6:].strip().decode()
    tail = buffer.strip()
    if tail.startswith(b"data:"):
        yield event, tail[5:].lstrip(b" ")


async def iter_lines(chunks: AsyncIterator[bytes]) -> AsyncIterator[tuple[str, bytes]]:
    """Newline-delimited JSON (Cohere's stream) as ("", line) pairs, each as soon as it is complete."""
    buffer = b""
    async for chunk in chunks:
        buffer += chunk
        if len(buffer) > MAX_LINE and b"\n" not in buffer:
            raise ValueError("stream line too long")
        while True:
            nl = buffer.find(b"\n")
            if nl < 0:
                break
            line = buffer[:nl].strip()
            buffer = buffer[nl + 1 :]
            if line:
                yield "", line
    tail = buffer.strip()
    if tail:
        yield "", tail


class IdleDeadline:
    """Awaits the next item of an async iterator, raising TimeoutError once `seconds` pass with
    nothing new (STREAMING_TIMEOUT). Unlike `asyncio.wait_for` per chunk, it creates no task per
    chunk: one timer, re-armed only when it fires before the deadline of the current wait."""

    __slots__ = ("_cancelling", "_expired", "_handle", "_loop", "_since", "_task", "_waiting", "seconds")

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._loop = asyncio.get_running_loop()
        self._task = cast("asyncio.Task[Any]", asyncio.current_task())  # made inside a task
        self._handle: asyncio.TimerHandle | None = None
        self._since = 0.0
        self._waiting = False
        self._expired = False
        self._cancelling = 0

    async def next(self, items: AsyncIterator[T]) -> T:
        self._since = self._loop.time()
        self._waiting = True
        self._cancelling = self._task.cancelling()
        if self._handle is None:
            self._handle = self._loop.call_at(self._since + self.seconds, self._fire)
        try:
            return await items.__anext__()
        except asyncio.CancelledError:
            # Ours only if nobody else asked for a cancel meanwhile (asyncio.timeout's rule).
            if self._expired and self._task.uncancel() <= self._cancelling:
                raise TimeoutError from None
            raise
        finally:
            self._waiting = False
            self._expired = False

    def _fire(self) -> None:
        self._handle = None
        if not self._waiting:
            return  # between items: next() re-arms
        due = self._since + self.seconds
        if self._loop.time() < due:
            self._handle = self._loop.call_at(due, self._fire)
            return
        self._expired = True
        self._task.cancel()

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
