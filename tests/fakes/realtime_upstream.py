"""A fake OpenAI Realtime upstream (websockets server in a thread on 127.0.0.1).

On connect it sends `session.created`; on each client `response.create` it answers
`response.created` then `response.done` with `usage` (10 text in, 20 text out, 5 audio out).
The channel key (subprotocol `openai-insecure-api-key.<key>`, `Authorization: Bearer`, or Azure's
`api-key`) picks other behaviours:
- contains `nousage`: each response streams an audio delta (0.5 s of pcm16) and a transcript delta
  "hello", then `response.done` without usage;
- contains `die`: the second response streams "hello" and then the TCP connection is cut;
- contains `refuse`: the handshake is answered with HTTP 500.
It records the request path and headers of every connection and every client event.
"""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from websockets.asyncio.server import serve

USAGE = {
    "total_tokens": 35, "input_tokens": 10, "output_tokens": 25,
    "input_token_details": {"text_tokens": 10, "audio_tokens": 0, "cached_tokens": 0},
    "output_token_details": {"text_tokens": 20, "audio_tokens": 5},
}
AUDIO_DELTA = base64.b64encode(bytes(24_000)).decode()  # 0.5 s of pcm16 at 24 kHz


def channel_key(headers: Any) -> str:
    for part in headers.get("sec-websocket-protocol", "").split(","):
        part = part.strip()
        if part.startswith("openai-insecure-api-key."):
            return part.removeprefix("openai-insecure-api-key.")
    return headers.get("api-key") or headers.get("authorization", "").removeprefix("Bearer ")


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
        async with serve(self._handle, "127.0.0.1", 0, process_request=self._check) as server:
            self.port = server.sockets[0].getsockname()[1] if hasattr(server, "sockets") else list(server.server.sockets)[0].getsockname()[1]
            ready.set()
            await asyncio.Future()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _check(self, connection, request):
        if "refuse" in channel_key(request.headers):
            self.connections.append({"path": request.path, "headers": dict(request.headers), "refused": True})
            return connection.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "refused\n")
        return None

    async def _handle(self, ws) -> None:
        key = channel_key(ws.request.headers)
        self.connections.append({"path": ws.request.path, "headers": dict(ws.request.headers)})
        await ws.send(json.dumps({"type": "session.created", "session": {"input_audio_format": "pcm16"}}))
        responses = 0
        async for message in ws:
            event = json.loads(message)
            self.received.append(event)
            if event.get("type") != "response.create":
                continue
            responses += 1
            await ws.send(json.dumps({"type": "response.created", "response": {"id": f"resp_{responses}"}}))
            if "die" in key and responses == 2:
                await ws.send(json.dumps({"type": "response.audio_transcript.delta", "delta": "hello"}))
                await asyncio.sleep(0.2)
                ws.transport.abort()
                return
            if "nousage" in key:
                await ws.send(json.dumps({"type": "response.audio.delta", "delta": AUDIO_DELTA}))
                await ws.send(json.dumps({"type": "response.audio_transcript.delta", "delta": "hello"}))
                await ws.send(json.dumps({"type": "response.done", "response": {"id": f"resp_{responses}"}}))
            else:
                await ws.send(json.dumps({"type": "response.done", "response": {"id": f"resp_{responses}", "usage": USAGE}}))
