"""A fake OpenAI Realtime upstream (websockets server in a thread on 127.0.0.1).

On connect it sends `session.created`; on each client `response.create` it answers
`response.created` then `response.done` with `usage` (10 text in, 20 text out, 5 audio out).
It records the request path and headers of every connection.
"""

from __future__ import annotations

import asyncio
import json
import threading
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.server import serve

USAGE = {
    "total_tokens": 35, "input_tokens": 10, "output_tokens": 25,
    "input_token_details": {"text_tokens": 10, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 20, "audio_tokens": 5},
}


@dataclass
class FakeRealtime:
    port: int = 0
    connections: list[dict[str, Any]] = field(default_factory=list)
    received: list[dict[str, Any]] = field(default_factory=list)

    def start(self) -> FakeRealtime:
        ready = threading.Event()
        threading.Thread(target=lambda: asyncio.run(self._main(ready)), daemon=True).start()
        ready.wait(10)
        return self

    async def _main(self, ready: threading.Event) -> None:
        async with serve(self._handle, "127.0.0.1", 0) as server:
            self.port = server.sockets[0].getsockname()[1] if hasattr(server, "sockets") else list(server.server.sockets)[0].getsockname()[1]
            ready.set()
            await asyncio.Future()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _handle(self, ws) -> None:
        self.connections.append({"path": ws.request.path, "headers": dict(ws.request.headers)})
        await ws.send(json.dumps({"type": "session.created", "session": {"input_audio_format": "pcm16"}}))
        async for message in ws:
            event = json.loads(message)
            self.received.append(event)
            if event.get("type") == "response.create":
                await ws.send(json.dumps({"type": "response.created", "response": {"id": "resp_1"}}))
                await ws.send(json.dumps({"type": "response.done", "response": {"id": "resp_1", "usage": USAGE}}))
