"""The relay's ASGI front: routes /v1 relay paths to the relay services, everything else to Django.

It reads the body (413 past MAX_REQUEST_BODY_MB, before or after gzip decoding), turns RelayErrors into OpenAI error bodies,
and streams SSE with disconnect detection: when the client goes away, the upstream read is
cancelled and the generator's cleanup bills what was produced.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from billing import writer
from newapi_site import bus, client_ip
from relay import metrics, rate_limit
from relay.edge.request_body import gunzip, max_body_bytes, too_large
from relay.edge.wire import ClientRequest, Response, StreamingResponse, error_response
from relay.errors import LocalError, RelayError
from relay.modes import claude_messages, gemini_native, pipeline
from relay.modes import media as modes
from relay.modes import models_list as models_api
from relay.modes import responses as responses_api
from relay.upstream.safe_paths import check_client_path

log = logging.getLogger("newapi.relay")

# The ASGI interface, as plain dicts.
Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Handler = Callable[..., Awaitable[Response | StreamingResponse]]

NOT_IMPLEMENTED = LocalError(
    "API not implemented", status=501, type="new_api_error", code="api_not_implemented"
)


def _text(mode: str) -> Handler:
    async def handler(req: ClientRequest, **params: str) -> Response | StreamingResponse:
        return await pipeline.relay(req, mode, params.get("model", ""))

    return handler


async def _not_implemented(req: ClientRequest, **params: str) -> Response:
    raise NOT_IMPLEMENTED


async def _list_models(req: ClientRequest, **params: str) -> Response:
    if gemini_native.asks_gemini(req):  # Gemini clients list /v1/models too, with a Google key
        return await gemini_native.list_models(req)
    if claude_messages.asks_claude(req):  # and Anthropic clients, with their anthropic-version
        return await claude_messages.list_models(req)
    return await models_api.list_models(req)


async def _retrieve_model(req: ClientRequest, model: str) -> Response:
    if gemini_native.asks_gemini(req):
        return await gemini_native.get_model(req, model)
    if claude_messages.asks_claude(req):
        return await claude_messages.retrieve_model(req, model)
    return await models_api.retrieve_model(req, model)


# (method, regex) → handler. Other modules add their routes with `add_route`.
ROUTES: list[tuple[str, re.Pattern[str], Handler]] = []


def add_route(method: str, pattern: str, handler: Handler) -> None:
    ROUTES.append((method, re.compile(pattern + r"/?$"), handler))


add_route("POST", r"/v1/chat/completions", _text("chat"))
add_route("POST", r"/v1/completions", _text("completions"))
add_route("POST", r"/v1/embeddings", _text("embeddings"))
add_route("POST", r"/v1/engines/(?P<model>[^/]+)/embeddings", _text("embeddings"))
add_route("POST", r"/v1/moderations", _text("moderations"))
add_route("POST", r"/v1/messages", claude_messages.handle_messages)
add_route("POST", r"/v1/messages/count_tokens", claude_messages.handle_count_tokens)
add_route("POST", r"/v1/images/generations", modes.images)
add_route("POST", r"/v1/images/edits", modes.image_edits)
add_route("POST", r"/v1/images/variations", modes.image_variations)
add_route("POST", r"/v1/audio/speech", modes.speech)
add_route("POST", r"/v1/audio/transcriptions", modes.transcription)
add_route("POST", r"/v1/audio/translations", modes.transcription)
add_route("POST", r"/v1/rerank", modes.rerank)
add_route("POST", r"/v1/responses", responses_api.create)
add_route("GET", r"/v1/responses/(?P<response_id>[^/]+)", responses_api.retrieve)
add_route("DELETE", r"/v1/responses/(?P<response_id>[^/]+)", responses_api.delete)
add_route("GET", r"/v1/responses/(?P<response_id>[^/]+)/input_items", responses_api.input_items)
add_route("POST", r"/v1/responses/(?P<response_id>[^/]+)/cancel", responses_api.cancel)
# Gemini's native API (a POST to /v1/models/{model}:{action} is Gemini's; GET /v1/models stays OpenAI's list)
add_route("GET", r"/v1beta/models", gemini_native.list_models)
add_route("GET", r"/v1beta/models/(?P<model>[^/:]+)", gemini_native.get_model)
add_route("POST", r"/v1beta/models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)", gemini_native.handle)
add_route("POST", r"/v1/models/(?P<model>[^/:]+):(?P<action>[A-Za-z]+)", gemini_native.handle)
add_route("GET", r"/v1/models", _list_models)
add_route("GET", r"/v1/models/(?P<model>.+)", _retrieve_model)
for _method, _path in [
    ("POST", r"/v1/edits"),
    ("POST", r"/v1/fine-tunes"),
    ("POST", r"/v1/fine-tunes/[^/]+/cancel"),
    ("POST", r"/v1/files"),
    ("GET", r"/v1/files"),
    ("GET", r"/v1/files/[^/]+"),
    ("GET", r"/v1/files/[^/]+/content"),
    ("GET", r"/v1/fine-tunes"),
    ("GET", r"/v1/fine-tunes/[^/]+"),
    ("GET", r"/v1/fine-tunes/[^/]+/events"),
    ("DELETE", r"/v1/files/[^/]+"),
    ("DELETE", r"/v1/models/[^/]+"),
]:
    add_route(_method, _path, _not_implemented)

# Paths under /v1 that Django serves (key-based usage for third-party tools).
DJANGO_V1_PREFIXES = ("/v1/dashboard/",)


def match(method: str, path: str) -> tuple[Handler, dict[str, str]] | None:
    for route_method, pattern, handler in ROUTES:
        if route_method == method:
            m = pattern.match(path)
            if m:
                return handler, m.groupdict()
    return None


def _is_relay_path(path: str) -> bool:
    # /api/mj/self etc. are management routes; /pg/ (the playground) authenticates by dashboard session
    if path.startswith(("/api/", "/pg/", *DJANGO_V1_PREFIXES)):
        return False
    return (
        path.startswith(("/v1/", "/v1beta/"))
        or path == "/v1"
        or path.startswith(("/mj/", "/suno/"))
        or "/mj/" in path
    )


CORS_HEADERS = [
    (b"access-control-allow-origin", b"*"),
    (b"access-control-allow-credentials", b"true"),
    (b"access-control-allow-methods", b"GET, POST, PUT, DELETE, OPTIONS"),
    (b"access-control-allow-headers", b"*"),
]


class RelayRouter:
    def __init__(self, fallback: ASGIApp) -> None:
        self.fallback = fallback
        self._started = False

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_relay_path(scope["path"]):
            await self.fallback(scope, receive, send)
            return
        if not self._started:
            self._started = True
            bus.ensure_listener()
            writer.start_background_writer()
        opened = rate_limit.open_scope()
        try:
            await self.handle(scope, receive, send)
        finally:
            # success slots of a request that did not bill go back
            if held := rate_limit.close_scope(opened):
                await rate_limit.release_held(held)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        method = scope["method"]
        path = scope["path"]
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        if method == "OPTIONS":
            await _send_response(send, Response(204, b"", b"text/plain"))
            return
        request_id = ""
        try:
            check_client_path(path)  # parts of it become upstream URLs (/mj, /suno, Gemini model paths)
            body = await _read_body(receive, headers)
            client = scope.get("client") or ("", 0)
            req = ClientRequest(
                method=method,
                path=path,
                query=scope.get("query_string", b"").decode("latin-1"),
                headers=headers,
                body=body,
                client_ip=_client_ip(headers, client[0]),
            )
            request_id = req.request_id
            found = match(method, path)
            if found is None:
                raise LocalError(
                    f"Invalid URL ({method} {path})", status=404, type="invalid_request_error", code=""
                )
            handler, params = found
            response = await handler(req, **params)
        except RelayError as err:
            response = error_response(err, request_id)
            if metrics.ENABLED:
                metrics.record_refused(err.status)
        except Exception:
            log.exception("relay failure on %s %s", method, path)
            response = error_response(
                RelayError("internal error", status=500, type="new_api_error", code="internal_error"),
                request_id,
            )
        if isinstance(response, StreamingResponse):
            await _send_stream(send, receive, response, request_id)
            return
        await _send_response(send, response, request_id)


async def _read_body(receive: Receive, headers: dict[str, str]) -> bytes:
    limit = max_body_bytes()
    declared = headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise asyncio.CancelledError()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise too_large(limit)
        chunks.append(chunk)
        if not message.get("more_body"):
            break
    body = b"".join(chunks)
    encoding = headers.get("content-encoding")
    if encoding and encoding.strip().lower() in ("gzip", "x-gzip"):
        body = gunzip(body, limit)
    return body


def _client_ip(headers: dict[str, str], peer: str) -> str:
    return client_ip.from_headers(headers, peer)


def _common_headers(request_id: str) -> list[tuple[bytes, bytes]]:
    headers = list(CORS_HEADERS)
    if request_id:
        headers.append((b"x-oneapi-request-id", request_id.encode()))
    return headers


async def _send_response(send: Send, response: Response, request_id: str = "") -> None:
    # A Content-Length lets the server send the response in one write instead of chunked framing.
    headers = [
        (b"content-type", response.content_type),
        (b"content-length", str(len(response.body)).encode()),
        *response.headers,
        *_common_headers(request_id),
    ]
    await send({"type": "http.response.start", "status": response.status, "headers": headers})
    await send({"type": "http.response.body", "body": response.body})


async def _send_stream(send: Send, receive: Receive, response: StreamingResponse, request_id: str) -> None:
    """Relay the chunks from this task; a watcher cancels it when the client goes away, which
    stops the upstream read and lets the generator's cleanup bill what was produced."""
    headers = [*response.headers, *_common_headers(request_id)]
    chunks = response.chunks
    task = asyncio.current_task()
    assert task is not None
    state = {"left": False, "done": False}

    async def watch_disconnect() -> None:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                if not state["done"]:
                    state["left"] = True
                    task.cancel()
                return

    watcher = asyncio.ensure_future(watch_disconnect())
    try:
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        async for piece in chunks:
            await send({"type": "http.response.body", "body": piece, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    except asyncio.CancelledError:
        if not state["left"]:
            raise
        task.uncancel()  # the client left: not a cancellation of the server's work
    except Exception:
        log.exception("stream relay failed for request %s", request_id)
    finally:
        state["done"] = True  # from here on, a disconnect must not interrupt the billing below
        watcher.cancel()
        await chunks.aclose()  # runs the generator's cleanup (billing) if it did not finish
        if response.on_close is not None:
            await response.on_close()
