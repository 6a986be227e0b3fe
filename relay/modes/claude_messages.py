"""The native Anthropic endpoint `POST /v1/messages`.

Anthropic channels get the request as is and answer verbatim (native SSE re-framed as
`event: <type>`); OpenAI-type channels get it converted to chat completions and answer converted
back, stream included. Billing is Claude-style: cache reads and writes priced at their own ratios.
Every error leaves in Claude's shape {"type":"error","error":{...}}.
"""

from __future__ import annotations

import logging

import httpx
import orjson

from relay.adaptors import adaptor_for
from relay.adaptors.base import NativeClaude, RelayContext, is_stream_response, needs_setup, speaks_claude
from relay.adaptors.openai import OpenAIAdaptor
from relay.edge.wire import ClientRequest, Response, StreamingResponse
from relay.errors import LocalError, RelayError, UpstreamError
from relay.metering.charge import settle
from relay.modes import pipeline
from relay.modes.claude_convert import (
    OpenAIToClaudeStream,
    claude_to_openai_request,
    openai_to_claude_response,
)
from relay.modes.job import Job
from relay.upstream import http

log = logging.getLogger("newapi.relay")
MODE = "claude"


def claude_error_response(err: RelayError, request_id: str) -> Response:
    message = f"{err.message} (request id: {request_id})" if request_id else err.message
    body = {"type": "error", "error": {"type": err.type or "new_api_error", "message": message}}
    return Response(err.status, orjson.dumps(body))


async def handle_messages(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    try:
        return await relay_messages(req)
    except RelayError as err:
        return claude_error_response(err, req.request_id)


async def relay_messages(req: ClientRequest) -> Response | StreamingResponse:
    job = await pipeline.prepare(req, MODE)
    try:
        messages = job.body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise LocalError(
                "field messages is required",
                status=400,
                type="invalid_request_error",
                code="invalid_claude_request",
            )
        job.is_stream = bool(job.body.get("stream"))
        return await pipeline.attempt_all(job, send)
    except BaseException:
        await job.hold.refund()
        raise


async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response | StreamingResponse:
    adaptor = adaptor_for(ctx.channel.type)
    native: NativeClaude | None = adaptor if speaks_claude(adaptor) else None
    if needs_setup(adaptor):
        await adaptor.setup(ctx)
    if native is not None:
        upstream = native.build_native_request(ctx)
    elif isinstance(adaptor, OpenAIAdaptor):
        to_openai(job, ctx, adaptor)
        upstream = adaptor.build_request(ctx)
    else:
        raise LocalError(
            f"/v1/messages is not supported by channel type {ctx.channel.type}",
            status=400,
            type="invalid_request_error",
            code="invalid_api_type",
        )
    resp = await pipeline.open_upstream(upstream, ctx.channel)
    if job.is_stream and is_stream_response(adaptor, resp.headers.get("content-type", "")):
        translator = (
            native.native_stream_translator(ctx)
            if native is not None
            else OpenAIToClaudeStream(ctx, job.count_prompt())
        )
        return pipeline.streaming_response(job, ctx, adaptor, translator, resp, tried)
    try:
        raw = await resp.aread()
    except httpx.HTTPError as exc:
        raise http.network_error(exc) from None
    finally:
        await resp.aclose()
    if native is not None:
        parsed = native.parse_native(ctx, resp.status_code, raw)
        usage = parsed.usage or pipeline.fallback_usage(job, parsed)
        out = parsed.body
    else:
        parsed = adaptor.parse_response(ctx, resp.status_code, raw, resp.headers.get("content-type", ""))
        usage = parsed.usage or pipeline.fallback_usage(job, parsed)
        try:
            data = orjson.loads(parsed.body)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                "invalid upstream response",
                status=500,
                type="upstream_error",
                code="unmarshal_response_body_failed",
            ) from None
        out = orjson.dumps(openai_to_claude_response(data, job.model, usage))
    await settle(job, ctx, usage, tried, frt_ms=-1000)
    return Response(200, out)


def to_openai(job: Job, ctx: RelayContext, adaptor: OpenAIAdaptor) -> None:
    """Turn this attempt into a chat completion for an OpenAI-type channel."""
    ctx.body = claude_to_openai_request(job.body, ctx.upstream_model)
    ctx.mode = "chat"
    ctx.path = "/v1/chat/completions"
    ctx.query = ""
    ctx.body_changed = True
    ctx.is_stream = job.is_stream
    if job.is_stream and adaptor.supports_stream_options:
        ctx.body["stream_options"] = {"include_usage": True}
