"""A fake upstream for images, speech and rerank, shaped after the providers' public API docs
(OpenAI images incl. multipart edits / variations, speech, transcriptions, Jina / Cohere / SiliconFlow rerank, Cohere v1 chat with its NDJSON stream, Dify chat-messages blocking and streaming). The rerank answer's shape is chosen
by the key: `jina`, `cohere`, `silicon` (anything else: Jina's). Requests are recorded."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from aiohttp import web

from tests.fakes.openai_upstream import Recorded
from tests.fakes.server import ThreadedServer

AUDIO = b"ID3\x04fake-mp3-bytes"


@dataclass
class FakeModes(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Recorded] = field(default_factory=list)
    files: dict[str, dict[str, dict]] = field(default_factory=dict)  # key → the last multipart request's files

    def last(self, key: str) -> Recorded:
        return [r for r in self.requests if r.key == key][-1]

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if request.content_type == "multipart/form-data":
            return await self._multipart(request)
        body = json.loads(await request.read() or b"null")
        key = request.headers.get("Authorization", "").removeprefix("Bearer ")
        self.requests.append(Recorded(request.path, dict(request.headers), body, key, request.query_string))
        if key.startswith("status-"):
            code = int(key.split("-")[1])
            return web.json_response({"error": {"message": f"fake says {code}", "type": "upstream_test"}}, status=code)
        if request.path == "/v1/images/generations":
            n = body.get("n") or 1
            return web.json_response({"created": int(time.time()), "data": [{"url": f"https://img.example/{i}.png", "revised_prompt": body["prompt"]} for i in range(n)]})
        if request.path == "/v1/audio/speech":
            return web.Response(body=AUDIO, content_type="audio/mpeg")
        if request.path == "/v1/chat-messages":
            usage = {"prompt_tokens": 14, "completion_tokens": 6, "total_tokens": 20}
            if body.get("response_mode") == "blocking":
                return web.json_response({"event": "message", "message_id": "m1", "conversation_id": "conv1", "mode": "chat", "answer": "Hello from Dify!", "metadata": {"usage": usage}, "created_at": 1700000000})
            response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
            await response.prepare(request)
            events = [
                {"event": "workflow_started", "data": {"workflow_id": "wf1", "status": "running"}},
                {"event": "node_finished", "data": {"node_type": "llm", "status": "succeeded"}},
                {"event": "message", "answer": "Hello"},
                {"event": "message", "answer": " from Dify!"},
                {"event": "message_end", "metadata": {"usage": usage}},
            ]
            for e in events:
                await response.write(f"data: {json.dumps(e)}\n\n".encode())
            await response.write_eof()
            return response
        if request.path == "/v1/chat":
            meta = {"billed_units": {"input_tokens": 9, "output_tokens": 3}}
            if not body.get("stream"):
                return web.json_response({"response_id": "co-1", "text": "Hello from Cohere!", "generation_id": "g-1", "finish_reason": "COMPLETE", "meta": meta})
            events = [{"is_finished": False, "event_type": "stream-start", "generation_id": "g-1"}]
            events += [{"is_finished": False, "event_type": "text-generation", "text": t} for t in ("Hello", " from Cohere!")]
            events.append({"is_finished": True, "event_type": "stream-end", "finish_reason": "COMPLETE", "response": {"response_id": "co-1", "text": "Hello from Cohere!", "meta": meta}})
            return web.Response(body=b"\n".join(json.dumps(e).encode() for e in events) + b"\n", content_type="application/stream+json")
        if request.path == "/v1/rerank":
            docs = body["documents"]
            order = sorted(range(len(docs)), key=lambda i: -len(str(docs[i])))[: body.get("top_n") or len(docs)]
            if key == "cohere":
                results = [{"index": i, "relevance_score": 0.9 - 0.1 * r} for r, i in enumerate(order)]
                return web.json_response({"id": "rr-1", "results": results, "meta": {"api_version": {"version": "1"}, "billed_units": {"search_units": 1}}})
            if key == "silicon":
                results = [{"index": i, "relevance_score": 0.9 - 0.1 * r, "document": {"text": docs[i]}} for r, i in enumerate(order)]
                return web.json_response({"id": "sf-1", "results": results, "meta": {"tokens": {"input_tokens": 200, "output_tokens": 0}}})
            results = [{"index": i, "relevance_score": 0.9 - 0.1 * r, "document": {"text": docs[i]}} for r, i in enumerate(order)]
            return web.json_response({"model": body["model"], "usage": {"total_tokens": 300, "prompt_tokens": 300}, "results": results})
        return web.json_response({"error": {"message": "not found", "type": "invalid_request_error"}}, status=404)

    async def _multipart(self, request: web.Request) -> web.StreamResponse:
        """Audio transcriptions and image edits / variations: every text field as sent, every file
        as {filename, size} (and its content type and bytes in `files`)."""
        form = await request.post()
        body: dict = {}
        files: dict[str, dict] = {}
        for name, value in form.items():
            if isinstance(value, web.FileField):
                data = value.file.read()
                body[name] = {"filename": value.filename, "size": len(data)}
                files[name] = {"filename": value.filename, "content_type": value.content_type, "data": data}
            else:
                body[name] = value
        key = request.headers.get("Authorization", "").removeprefix("Bearer ") or request.headers.get("api-key", "")
        recorded = Recorded(request.path, dict(request.headers), body, key, request.query_string)
        self.requests.append(recorded)
        self.files[key] = files
        if key.startswith("status-"):
            code = int(key.split("-")[1])
            return web.json_response({"error": {"message": f"fake says {code}", "type": "upstream_test"}}, status=code)
        if request.path.endswith(("/images/edits", "/images/variations")):
            n = int(body.get("n") or 1)
            kind = "edit" if request.path.endswith("edits") else "variation"
            return web.json_response({"created": int(time.time()), "data": [{"url": f"https://img.example/{kind}-{i}.png"} for i in range(n)]})
        return web.json_response({"text": "hello from whisper"})
