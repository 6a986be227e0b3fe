"""Gemini's native API: `POST /v1beta/models/{model}:{action}` (and /v1), `GET /v1beta/models[/{model}]`.

Gemini and Vertex channels get the request as is (NativeGemini) and their answer goes back verbatim;
every other channel gets a chat completion (or an embeddings call) converted from it, answered
back in Gemini's shape, stream included. A stream goes out as SSE when the client asked `?alt=sse`,
else as one JSON array, as Google does. Billing is from usageMetadata (cached tokens at the cache
ratio, thoughts as completion); countTokens is free. Errors leave in Google's shape.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any
from urllib.parse import parse_qsl, urlencode

import orjson

from billing import ledger
from billing.ledger import QuotaError
from billing.pricing import pre_consume_estimate
from newapi_site.options import options
from relay import auth, rate_limit, state
from relay.adaptors import adaptor_for
from relay.adaptors.base import (
    Adaptor,
    RelayContext,
    UpstreamRequest,
    Usage,
    is_stream_response,
    needs_setup,
    speaks_gemini,
)
from relay.adaptors.gemini import gemini_usage
from relay.channels import key_choice
from relay.channels.choice import Route
from relay.edge.wire import ClientRequest, Response, StreamingResponse, json_response
from relay.errors import LocalError, RelayError, UpstreamError
from relay.metering import tokenizer
from relay.metering.charge import quota_error, settle
from relay.modes import pipeline
from relay.modes.gemini_convert import (
    ChatToGeminiStream,
    GeminiFrames,
    NativeGeminiStream,
    bad_request,
    embed_texts,
    google_error,
    to_chat_request,
    to_embeddings_request,
    to_gemini_embeddings,
    to_gemini_response,
)
from relay.modes.job import Job
from relay.modes.models_list import visible_models
from relay.upstream import http

log = logging.getLogger("newapi.relay")
MODE = "gemini"
GENERATE = ("generateContent", "streamGenerateContent")
EMBED = ("embedContent", "batchEmbedContents")
ACTIONS = (*GENERATE, *EMBED, "countTokens")
# What never goes upstream from the client's query: its key (ours, not the channel's) and the
# stream framing (asked of the upstream as SSE, then written as the client asked).
DROPPED_PARAMS = ("key", "alt")


def error_response(err: RelayError, request_id: str) -> Response:
    message = f"{err.message} (request id: {request_id})" if request_id else err.message
    body = google_error(err.status, message)
    upstream = _upstream_status(err)
    if upstream:  # a Google upstream's own status name (FAILED_PRECONDITION, …) says more than ours
        body["error"]["status"] = upstream
    return Response(err.status, orjson.dumps(body))


def _upstream_status(err: RelayError) -> str:
    if not isinstance(err, UpstreamError) or not err.upstream_body.startswith(b"{"):
        return ""
    try:
        data = orjson.loads(err.upstream_body)
    except orjson.JSONDecodeError:
        return ""
    status = (data.get("error") or {}).get("status") if isinstance(data, dict) else None
    return status if isinstance(status, str) and status.isupper() and len(status) < 64 else ""


def wants_sse(query: str) -> bool:
    return "alt=sse" in query and ("alt", "sse") in parse_qsl(query)


def forwarded_query(query: str) -> str:
    if not query:
        return ""
    return urlencode([(k, v) for k, v in parse_qsl(query) if k not in DROPPED_PARAMS])


def asks_gemini(req: ClientRequest) -> bool:
    """A models listing from a Gemini client (a Google key, not a Bearer one) wants Gemini's shape."""
    return bool(req.headers.get("x-goog-api-key")) or bool(auth.query_key(req.query))


async def _authenticate(req: ClientRequest, relayed: bool = True) -> auth.Caller:
    """The caller; a relayed request (not a listing) also counts against the user's rate limit."""
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path, req.query)
    if relayed:
        await rate_limit.check(caller.user.id)
    return caller


# -- routes ----------------------------------------------------------------------------------------
async def handle(req: ClientRequest, model: str, action: str) -> Response | StreamingResponse:
    try:
        if action not in ACTIONS:
            raise LocalError(
                f"method {action} is not supported", status=404, type="invalid_request_error", code=""
            )
        caller = await _authenticate(req)
        if action == "countTokens":
            return await count_tokens(req, caller, model)
        return await relay(req, caller, model, action)
    except RelayError as err:
        return error_response(err, req.request_id)


async def list_models(req: ClientRequest, **_params: str) -> Response:
    try:
        caller = await _authenticate(req, relayed=False)
        models = visible_models(caller, await state.channels.index())
        return json_response({"models": [model_object(m) for m in models]})
    except RelayError as err:
        return error_response(err, req.request_id)


async def get_model(req: ClientRequest, model: str) -> Response:
    try:
        caller = await _authenticate(req, relayed=False)
        index = await state.channels.index()
        if model not in visible_models(caller, index):
            fresh = await state.fresher_channels(index)
            if fresh is None or model not in visible_models(caller, fresh):
                raise LocalError(f"models/{model} is not found", status=404, code="model_not_found")
        return json_response(model_object(model))
    except RelayError as err:
        return error_response(err, req.request_id)


def model_object(model: str) -> dict[str, Any]:
    embedding = "embedding" in model
    methods = ["embedContent", "batchEmbedContents"] if embedding else ["generateContent", "countTokens"]
    return {
        "name": f"models/{model}",
        "baseModelId": model,
        "version": "001",
        "displayName": model,
        "description": "",
        "supportedGenerationMethods": methods,
    }


# -- generateContent, streamGenerateContent, embedContent, batchEmbedContents ----------------------
async def relay(
    req: ClientRequest, caller: auth.Caller, model: str, action: str
) -> Response | StreamingResponse:
    job = await pipeline.prepare_for(caller, _path_model_only(req), MODE, model)
    try:
        if action in GENERATE:
            contents = job.body.get("contents")
            if not isinstance(contents, list) or not contents:
                raise bad_request("contents is required")
            await _hold_for_output(job)
        else:
            embed_texts(action, job.body)  # validates
        job.is_stream = action == "streamGenerateContent"
        sse = wants_sse(req.query)

        async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response | StreamingResponse:
            return await send_one(job, ctx, tried, action, sse)

        return await pipeline.attempt_all(job, send)
    except BaseException:
        await job.hold.refund()
        raise


def _path_model_only(req: ClientRequest) -> ClientRequest:
    """The model is the one in the path: a `model` field in the body (embedContent has one) is not priced."""
    if b'"model"' not in req.body:
        return req
    body = pipeline.parse_body(req)
    body.pop("model", None)
    return dataclasses.replace(req, body=orjson.dumps(body))


async def _hold_for_output(job: Job) -> None:
    """The hold covers maxOutputTokens when the request sets it, as chat's covers max_tokens."""
    config = job.body.get("generationConfig") or job.body.get("generation_config")
    limit = (
        config.get("maxOutputTokens") or config.get("max_output_tokens") if isinstance(config, dict) else 0
    )
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0 or job.price.use_price:
        return
    full = pre_consume_estimate(job.price, len(job.req.body) // 4 + 1, min(limit, 1 << 31))
    if full > job.estimate:
        try:
            await ledger.reserve_more(job.hold, full - job.estimate)
        except QuotaError as exc:
            raise quota_error(exc) from None
        job.estimate = full


async def send_one(
    job: Job, ctx: RelayContext, tried: list[int], action: str, sse: bool
) -> Response | StreamingResponse:
    adaptor = adaptor_for(ctx.channel.type)
    if needs_setup(adaptor):
        await adaptor.setup(ctx)
    ctx.query = forwarded_query(job.req.query)
    native = adaptor.build_gemini_request(ctx, action) if speaks_gemini(adaptor) else None
    if native is not None and action == "batchEmbedContents" and ctx.upstream_model != job.model:
        native.body = _remap_batch(job.body, ctx.upstream_model)
    upstream = native if native is not None else _convert(job, ctx, adaptor, action)
    resp = await pipeline.open_upstream(upstream, ctx.channel)
    if job.is_stream and is_stream_response(adaptor, resp.headers.get("content-type", "")):
        frames = GeminiFrames(sse)
        translator = (
            NativeGeminiStream(ctx, frames)
            if native is not None
            else ChatToGeminiStream(ctx, adaptor.stream_translator(ctx), frames)
        )
        out = pipeline.streaming_response(job, ctx, adaptor, translator, resp, tried)
        if not sse:
            out.headers = [(b"content-type", b"application/json"), (b"cache-control", b"no-cache")]
        return out
    raw = await http.read_body(resp)
    body, usage = (
        _native_answer(job, action, raw)
        if native is not None
        else _converted_answer(job, ctx, adaptor, action, resp.status_code, raw)
    )
    await settle(job, ctx, usage, tried, frt_ms=-1000)
    if job.is_stream:  # the upstream answered in one piece: one event (or a one-element array)
        frames = GeminiFrames(sse)
        body = b"".join([frames.event(body), *frames.close()])
        return Response(200, body, b"text/event-stream" if sse else b"application/json")
    return Response(200, body)


def _remap_batch(body: dict[str, Any], model: str) -> bytes:
    requests = [{**r, "model": f"models/{model}"} for r in body.get("requests") or [] if isinstance(r, dict)]
    return orjson.dumps({**body, "requests": requests})


def _convert(job: Job, ctx: RelayContext, adaptor: Adaptor, action: str) -> UpstreamRequest:
    """This attempt as a chat completion (or embeddings call) for a channel without Gemini's API."""
    ctx.query = ""
    ctx.body_changed = True
    if action in EMBED:
        ctx.mode, ctx.path, ctx.is_stream = "embeddings", "/v1/embeddings", False
        ctx.body = to_embeddings_request(action, job.body, ctx.upstream_model)
        return adaptor.build_request(ctx)
    ctx.mode, ctx.path, ctx.is_stream = "chat", "/v1/chat/completions", job.is_stream
    ctx.body = to_chat_request(job.body, ctx.upstream_model, job.is_stream)
    if job.is_stream and adaptor.supports_stream_options:
        ctx.body["stream_options"] = {"include_usage": True}
        ctx.client_wants_usage = True  # the channel's translator keeps the usage chunk for us
    return adaptor.build_request(ctx)


def _json(raw: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError:
        data = None
    if not isinstance(data, dict):
        raise UpstreamError(
            "invalid upstream response",
            status=500,
            type="upstream_error",
            code="unmarshal_response_body_failed",
        )
    return data


def _embed_usage(job: Job, action: str) -> Usage:
    return Usage(tokenizer.count_input(embed_texts(action, job.body), job.model), 0)


def _native_answer(job: Job, action: str, raw: bytes) -> tuple[bytes, Usage]:
    data = _json(raw)
    if action in EMBED:
        return raw, _embed_usage(job, action)
    usage = gemini_usage(data.get("usageMetadata"))
    if usage is None:
        text = "".join(
            str(p.get("text") or "")
            for c in data.get("candidates") or []
            for p in (c.get("content") or {}).get("parts") or []
            if isinstance(p, dict)
        )
        usage = Usage(job.count_prompt(), tokenizer.count_text(text, job.model))
    return raw, usage


def _converted_answer(
    job: Job, ctx: RelayContext, adaptor: Adaptor, action: str, status: int, raw: bytes
) -> tuple[bytes, Usage]:
    parsed = adaptor.parse_response(ctx, status, raw, "application/json")
    data = _json(parsed.body)
    if action in EMBED:
        return orjson.dumps(to_gemini_embeddings(action, data)), parsed.usage or _embed_usage(job, action)
    usage = parsed.usage or pipeline.fallback_usage(job, parsed)
    return orjson.dumps(to_gemini_response(data, job.model, usage)), usage


# -- countTokens -----------------------------------------------------------------------------------
async def count_tokens(req: ClientRequest, caller: auth.Caller, model: str) -> Response:
    """Not billed: the channel's own count when it speaks Gemini, else ours."""
    auth.check_ip(caller.token, req.client_ip)
    if caller.pinned_channel_id is None:
        auth.check_model_allowed(caller.token, model)
    body = pipeline.parse_body(req)
    inner = body.get("generateContentRequest")
    request = inner if isinstance(inner, dict) else body
    if not isinstance(request.get("contents"), list):
        raise bad_request("contents is required")
    channel = await key_choice.bind(await Route(caller, model).first())
    adaptor = adaptor_for(channel.type)
    native = adaptor if speaks_gemini(adaptor) else None
    if native is not None:
        ctx = RelayContext(
            mode=MODE,
            channel=channel,
            origin_model=model,
            upstream_model=channel.model_mapping.get(model, model),
            path=req.path,
            query=forwarded_query(req.query),
            body=body,
            raw_body=req.body,
            client_headers=req.headers,
            options=options,
        )
        if needs_setup(adaptor):
            await adaptor.setup(ctx)
        upstream = native.build_gemini_request(ctx, "countTokens")
        if upstream is not None:
            resp = await pipeline.open_upstream(upstream, channel)
            raw = await http.read_body(resp)
            return Response(200, raw)
    chat = to_chat_request(request, model, stream=False)
    return json_response(
        {"totalTokens": tokenizer.count_messages(chat["messages"], model, chat.get("tools"))}
    )
