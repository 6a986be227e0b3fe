"""The one place that reads and writes Server-Sent Events."""

from __future__ import annotations

from collections.abc import AsyncIterator

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
