"""The native Anthropic endpoint `POST /v1/messages`.

Anthropic channels get the request as is and answer verbatim (native SSE re-framed as
`event: <type>`); OpenAI-type channels get it converted to chat completions and answer converted
back, stream included. Billing is Claude-style: cache reads and writes priced at their own ratios.
Every error leaves in Claude's shape {"type":"error","error":{...}}.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson

from newapi_site.options import options
from relay import auth, rate_limit, state
from relay.adaptors import adaptor_for, provider_for
from relay.adaptors.base import NativeClaude, RelayContext, is_stream_response, needs_setup, speaks_claude
from relay.adaptors.claude import ClaudeAdaptor
from relay.adaptors.openai import OpenAIAdaptor
from relay.channels import key_choice
from relay.channels.choice import Route
from relay.channels.types import ChannelType
from relay.edge.wire import ClientRequest, Response, StreamingResponse
from relay.errors import LocalError, RelayError, UpstreamError
from relay.metering.charge import settle
from relay.modes import pipeline
from relay.modes.claude_convert import (
    OpenAIToClaudeStream,
    claude_to_openai_request,
    openai_to_claude_response,
)
from relay.modes.job import Job, count_prompt
from relay.modes.models_list import CREATED, visible_models
from relay.state import ChannelInfo
from relay.upstream import http

log = logging.getLogger("newapi.relay")
MODE = "claude"
# Claude Code's name for a model with the 1M-token context window; the model is the one without it.
LONG_CONTEXT_SUFFIX = "[1m]"
LONG_CONTEXT_BETA = "context-1m-2025-08-07"


def claude_error_response(err: RelayError, request_id: str) -> Response:
    message = f"{err.message} (request id: {request_id})" if request_id else err.message
    body = {"type": "error", "error": {"type": err.type or "new_api_error", "message": message}}
    return Response(err.status, orjson.dumps(body))


async def handle_messages(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    try:
        return await relay_messages(req)
    except RelayError as err:
        return claude_error_response(err, req.request_id)


def long_context_model(req: ClientRequest) -> None:
    """`<model>[1m]` is priced and routed as `<model>`, asking Claude for the 1M-token context."""
    if b"[1m]" not in req.body and b"[1M]" not in req.body:
        return
    try:
        body = orjson.loads(req.body)
    except orjson.JSONDecodeError:
        return  # prepare() answers the parse error
    model = body.get("model") if isinstance(body, dict) else None
    if not isinstance(model, str) or not model.lower().endswith(LONG_CONTEXT_SUFFIX):
        return
    body["model"] = model[: -len(LONG_CONTEXT_SUFFIX)]
    req.body = orjson.dumps(body)
    betas = [b.strip() for b in req.headers.get("anthropic-beta", "").split(",") if b.strip()]
    if LONG_CONTEXT_BETA not in betas:
        req.headers["anthropic-beta"] = ",".join([*betas, LONG_CONTEXT_BETA])


async def relay_messages(req: ClientRequest) -> Response | StreamingResponse:
    long_context_model(req)
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
    raw = await http.read_body(resp)
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
    provider = provider_for(ctx.channel.type)
    ctx.body = claude_to_openai_request(
        job.body,
        ctx.upstream_model,
        caching=provider is not None and provider.cache_control,
        reasoning_object=ctx.channel.type == ChannelType.OPENROUTER,
    )
    ctx.mode = "chat"
    ctx.path = "/v1/chat/completions"
    ctx.query = ""
    ctx.body_changed = True
    ctx.is_stream = job.is_stream
    if job.is_stream and adaptor.supports_stream_options:
        ctx.body["stream_options"] = {"include_usage": True}


# -- POST /v1/messages/count_tokens ----------------------------------------------------------------
async def handle_count_tokens(req: ClientRequest, **_params: str) -> Response:
    """Anthropic's token count: asked of a Claude channel that serves the model, counted here
    otherwise (or when that channel fails). Free, like Anthropic's: nothing is held or billed."""
    try:
        return await count_tokens(req)
    except RelayError as err:
        return claude_error_response(err, req.request_id)


async def count_tokens(req: ClientRequest) -> Response:
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path)
    await rate_limit.check(caller.user.id)
    long_context_model(req)
    body = pipeline.parse_body(req)
    model = str(body.get("model") or "")
    if not model:
        raise LocalError("model is required", status=400, type="invalid_request_error", code="model_required")
    if not isinstance(body.get("messages"), list) or not body["messages"]:
        raise LocalError(
            "field messages is required",
            status=400,
            type="invalid_request_error",
            code="invalid_claude_request",
        )
    auth.check_ip(caller.token, req.client_ip)
    if caller.pinned_channel_id is None:
        auth.check_model_allowed(caller.token, model)
    route = Route(caller, model)
    # no channel for the model: the same refusal as /v1/messages
    channel: ChannelInfo | None = await route.first()
    while channel is not None:
        adaptor = adaptor_for(channel.type)
        if not isinstance(adaptor, ClaudeAdaptor):
            break
        try:
            # a multi-key channel's key for this call
            return await native_count(req, body, model, await key_choice.bind(channel), adaptor)
        except RelayError as err:  # the upstream's failure, or no key left on the channel
            log.info("count_tokens on channel #%s failed (%s); counting here", channel.id, err.status)
            channel = await route.another()
    tokens = await asyncio.to_thread(count_prompt, MODE, body, model)
    return Response(200, orjson.dumps({"input_tokens": tokens}))


async def native_count(
    req: ClientRequest, body: dict, model: str, channel: ChannelInfo, adaptor: ClaudeAdaptor
) -> Response:
    ctx = RelayContext(
        mode="count_tokens",
        channel=channel,
        origin_model=model,
        upstream_model=channel.model_mapping.get(model, model),
        path=req.path,
        query=req.query,
        body=dict(body),
        raw_body=req.body,
        client_headers=req.headers,
        options=options,
    )
    resp = await pipeline.open_upstream(adaptor.build_count_tokens_request(ctx), channel)
    raw = await http.read_body(resp)
    try:
        tokens = orjson.loads(raw).get("input_tokens")
    except (orjson.JSONDecodeError, AttributeError):
        tokens = None
    if not isinstance(tokens, int):
        raise UpstreamError(
            "invalid count_tokens answer", status=500, type="upstream_error", code="bad_count"
        )
    return Response(200, orjson.dumps({"input_tokens": tokens}))


# -- GET /v1/models in Anthropic's shape ---------------------------------------------------------------
def asks_claude(req: ClientRequest) -> bool:
    """A models listing from an Anthropic client (it always sends anthropic-version, its key in
    x-api-key or, from newer SDKs, as a Bearer token) is answered in Anthropic's shape."""
    return bool(req.headers.get("anthropic-version"))


def claude_model_object(model: str) -> dict[str, str]:
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(CREATED))
    return {"type": "model", "id": model, "display_name": model, "created_at": created}


async def list_models(req: ClientRequest, **_params: str) -> Response:
    try:
        await state.ensure_options_loaded()
        caller = await auth.authenticate(req.headers, req.path)
        models = visible_models(caller, await state.channels.index())
    except RelayError as err:
        return claude_error_response(err, req.request_id)
    page = {
        "data": [claude_model_object(m) for m in models],
        "has_more": False,
        "first_id": models[0] if models else None,
        "last_id": models[-1] if models else None,
    }
    return Response(200, orjson.dumps(page))


async def retrieve_model(req: ClientRequest, model: str) -> Response:
    try:
        await state.ensure_options_loaded()
        caller = await auth.authenticate(req.headers, req.path)
        index = await state.channels.index()
        if model not in visible_models(caller, index):
            fresh = await state.fresher_channels(index)
            if fresh is None or model not in visible_models(caller, fresh):
                raise LocalError(
                    f"model: {model}", status=404, type="not_found_error", code="model_not_found"
                )
    except RelayError as err:
        return claude_error_response(err, req.request_id)
    return Response(200, orjson.dumps(claude_model_object(model)))
