"""An ASGI application for the web worker's graceful-stop tests.

/stream: 20 chunks, then the last one written and the application returned in one loop step, as
the relay's stream ends; before that step the loop is held past a drain poll, so the drain's next
check runs right after it, before the written bytes have left the process.
/echo: answers how many body bytes it received.
"""

from __future__ import annotations

import asyncio
import time

from relay.edge import graceful

CHUNKS = 20


async def application(scope, receive, send) -> None:
    if scope["type"] != "http":
        return
    size = 0
    while True:
        message = await receive()
        size += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    if scope["path"] == "/echo":
        body = b"received %d" % size
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
        return
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]}
    )
    for i in range(CHUNKS):
        await asyncio.sleep(0.05)
        await send({"type": "http.response.body", "body": b"data: tok %d\n\n" % i, "more_body": True})
    time.sleep(graceful.POLL_SECONDS * 3)  # the loop busy: the drain's check falls due meanwhile
    await send({"type": "http.response.body", "body": b"data: [DONE]\n\n"})
