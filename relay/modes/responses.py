"""OpenAI's Responses API: `POST /v1/responses` and the follow-ups on one response
(`GET`/`DELETE /v1/responses/{id}`, `GET …/input_items`, `POST …/cancel`).

Channels whose provider serves the API (OpenAI, Azure) get the request as is and answer verbatim;
every other channel gets it as a chat completion, answered back as a Response (stream included),
so a Responses client (Codex CLI) works on any provider. Billing is the chat formula from the
Response's usage (cached input at the cache ratio), plus built-in tool calls priced per call.

A response id remembers its channel (responses_store): follow-ups and `previous_response_id` go to
that channel and no other. Converted answers are kept by us, so they can be retrieved and continued.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import AsyncGenerator
from typing import Any

import orjson

from billing import ledger
from billing.ledger import QuotaError
from billing.pricing import pre_consume_estimate
from relay import auth, state
from relay.adaptors import adaptor_for
from relay.adaptors.base import (
    Adaptor,
    ParsedResponse,
    RelayContext,
    is_stream_response,
    needs_setup,
    speaks_responses,
)
from relay.adaptors.registry import RESPONSES_TYPES
from relay.channels import key_choice
from relay.channels.choice import channel_by_id
from relay.channels.types import ChannelStatus
from relay.edge.wire import ClientRequest, Response, StreamingResponse
from relay.errors import LocalError, UpstreamError, invalid_request, upstream_error_from_response
from relay.metering.charge import quota_error, settle
from relay.modes import pipeline, responses_store
from relay.modes.job import Job
from relay.modes.responses_convert import (
    chat_to_response,
    items_of,
    new_id,
    output_items_for_history,
    responses_usage,
    to_chat_request,
    tool_calls,
    with_ids,
)
from relay.modes.responses_store import Stored
from relay.modes.responses_stream import ChatToResponsesStream, NativeResponsesStream
from relay.state import ChannelInfo
from relay.upstream import http

log = logging.getLogger("newapi.relay")
MODE = "responses"


def _not_found(response_id: str) -> LocalError:
    return LocalError(
        f"Response with id '{response_id}' not found.",
        status=404,
        type="invalid_request_error",
        code="not_found",
    )


def _unavailable(response_id: str) -> LocalError:
    return LocalError(
        f"the channel that created response '{response_id}' is no longer available: "
        "send the whole conversation as input instead",
        status=409,
        type="invalid_request_error",
        code="response_channel_unavailable",
    )


# -- POST /v1/responses --------------------------------------------------------------------------
async def create(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    job = await pipeline.prepare(req, MODE)
    try:
        body = job.body
        if not isinstance(body.get("input"), str | list):
            raise invalid_request(
                "field input is required (a string or a list of items)", code="invalid_request"
            )
        job.is_stream = bool(body.get("stream"))
        await _hold_for_output(job)
        previous: Stored | None = None
        previous_id = body.get("previous_response_id")
        if previous_id:
            previous = await responses_store.recall(str(previous_id), job.caller.user.id)
            if previous is None:
                raise LocalError(
                    f"Previous response with id '{previous_id}' not found.",
                    status=400,
                    type="invalid_request_error",
                    code="previous_response_not_found",
                )
            await _pin(job, previous)

        async def sender(job: Job, ctx: RelayContext, tried: list[int]) -> Response | StreamingResponse:
            return await send(job, ctx, tried, previous)

        return await pipeline.attempt_all(job, sender)
    except BaseException:
        await job.hold.refund()
        raise


async def _hold_for_output(job: Job) -> None:
    """The hold covers max_output_tokens, as a chat request's covers max_tokens."""
    limit = job.body.get("max_output_tokens")
    if not isinstance(limit, int) or isinstance(limit, bool) or limit <= 0 or job.price.use_price:
        return
    full = pre_consume_estimate(job.price, len(job.req.body) // 4 + 1, limit)
    if full > job.estimate:
        try:
            await ledger.reserve_more(job.hold, full - job.estimate)
        except QuotaError as exc:
            raise quota_error(exc) from None
        job.estimate = full


async def _pin(job: Job, previous: Stored) -> None:
    """A continued response is served by the channel that holds the one it continues."""
    channel = await channel_by_id(previous.channel_id)
    if channel is None or channel.status != ChannelStatus.ENABLED:
        raise _unavailable(previous.id)
    if job.caller.pinned_channel_id not in (None, previous.channel_id):
        raise invalid_request(
            f"response '{previous.id}' belongs to another channel than this key's",
            code="response_channel_mismatch",
        )
    if not previous.native and previous.items is None:
        raise invalid_request(
            f"response '{previous.id}' is too large to be continued: send the whole conversation as input",
            code="previous_response_too_large",
        )
    job.caller = dataclasses.replace(job.caller, pinned_channel_id=previous.channel_id)


def with_key(channel: ChannelInfo, stored: Stored) -> ChannelInfo:
    """A multi-key channel with the key that made `stored`: a response lives at one account."""
    if not channel.keys or stored.key_index < 0:
        return channel
    if stored.key_index not in channel.live_keys or stored.key_index >= len(channel.keys):
        raise _unavailable(stored.id)
    return dataclasses.replace(channel, key=channel.keys[stored.key_index], key_index=stored.key_index)


def is_native(ctx: RelayContext, adaptor: Adaptor) -> bool:
    return ctx.channel.type in RESPONSES_TYPES and speaks_responses(adaptor)


async def send(
    job: Job, ctx: RelayContext, tried: list[int], previous: Stored | None
) -> Response | StreamingResponse:
    adaptor = adaptor_for(ctx.channel.type)
    if needs_setup(adaptor):
        await adaptor.setup(ctx)
    native = is_native(ctx, adaptor)
    if previous is not None:
        if previous.native != native:
            raise _unavailable(previous.id)
        ctx.channel = with_key(ctx.channel, previous)
    store = job.body.get("store") is not False
    history: list[dict[str, Any]] = []
    response_id = ""
    if native:
        assert speaks_responses(adaptor)
        upstream = adaptor.responses_request(ctx, "POST", "")
    else:
        if job.body.get("background"):
            raise invalid_request(
                "background responses are served by OpenAI and Azure channels only",
                code="unsupported_parameter",
            )
        if previous is not None:
            history = (previous.items or []) + output_items_for_history(previous.response or {})
        response_id = new_id("resp")
        ctx.body = to_chat_request(job.body, ctx.upstream_model, history)
        ctx.mode = "chat"
        ctx.path = "/v1/chat/completions"
        ctx.query = ""
        ctx.body_changed = True
        if job.is_stream and adaptor.supports_stream_options:
            ctx.body["stream_options"] = {"include_usage": True}
        upstream = adaptor.build_request(ctx)
    resp = await pipeline.open_upstream(upstream, ctx.channel)
    items = history + with_ids(items_of(job.body)) if not native else None
    if job.is_stream and is_stream_response(adaptor, resp.headers.get("content-type", "")):
        if native:
            translator: NativeResponsesStream | ChatToResponsesStream = NativeResponsesStream(ctx, job.body)
        else:
            translator = ChatToResponsesStream(ctx, adaptor.stream_translator(ctx), job.body, response_id)
        streaming = pipeline.streaming_response(job, ctx, adaptor, translator, resp, tried)
        if not store:
            return streaming
        chunks = _remembering(streaming.chunks, job, ctx, translator, items)
        return StreamingResponse(streaming.status, chunks, streaming.headers, streaming.on_close)
    raw = await http.read_body(resp)
    if native:
        out, usage = _native_answer(job, ctx, resp.status_code, raw)
    else:
        parsed = adaptor.parse_response(ctx, resp.status_code, raw, resp.headers.get("content-type", ""))
        usage = parsed.usage or pipeline.fallback_usage(job, parsed)
        try:
            data = orjson.loads(parsed.body)
        except orjson.JSONDecodeError:
            raise _bad_upstream() from None
        out = chat_to_response(data, job.body, response_id, job.model, usage)
        raw = orjson.dumps(out)
    await settle(job, ctx, usage, tried, frt_ms=-1000)
    if store and out.get("id"):
        await _remember(job, ctx, native, str(out["id"]), items, None if native else out)
    return Response(200, raw)


def _bad_upstream() -> UpstreamError:
    return UpstreamError(
        "invalid upstream response", status=500, type="upstream_error", code="unmarshal_response_body_failed"
    )


def _native_answer(job: Job, ctx: RelayContext, status: int, raw: bytes) -> tuple[dict[str, Any], Any]:
    try:
        out = orjson.loads(raw)
    except orjson.JSONDecodeError:
        raise _bad_upstream() from None
    if not isinstance(out, dict):
        raise _bad_upstream()
    if isinstance(out.get("error"), dict) and out.get("object") != "response":
        raise upstream_error_from_response(status if status != 200 else 500, raw)
    calls = tool_calls(job.body, out.get("output"))
    if calls:
        ctx.extra["tool_calls"] = calls
    usage = responses_usage(out.get("usage"))
    if usage is None:
        text = "".join(_output_text(item) for item in out.get("output") or [] if isinstance(item, dict))
        usage = pipeline.fallback_usage(job, ParsedResponse(status, b"", None, completion_text=text))
    return out, usage


def _output_text(item: dict[str, Any]) -> str:
    if item.get("type") == "function_call":
        return str(item.get("name") or "") + str(item.get("arguments") or "")
    parts = item.get("content") or item.get("summary") or []
    return "".join(str(p.get("text") or "") for p in parts if isinstance(p, dict))


async def _remember(
    job: Job,
    ctx: RelayContext,
    native: bool,
    response_id: str,
    items: list[dict[str, Any]] | None,
    response: dict[str, Any] | None,
) -> None:
    try:
        await responses_store.remember(
            response_id, job.caller.user.id, ctx.channel.id, ctx.channel.key_index, native, items, response
        )
    except Exception:  # the answer is paid for and on its way: a lost record only loses the follow-ups
        log.exception("could not remember response %s of request %s", response_id, job.req.request_id)


async def _remembering(
    chunks: AsyncGenerator[bytes, None],
    job: Job,
    ctx: RelayContext,
    translator: NativeResponsesStream | ChatToResponsesStream,
    items: list[dict[str, Any]] | None,
) -> AsyncGenerator[bytes, None]:
    """The stream, with its response id recorded as soon as it is known. The write overlaps the
    rest of the stream (the text is not held back for it) and is awaited before the final event
    leaves, so a client that has the finished response can always find its channel. A converted
    answer is kept whole at the same point, so it can be retrieved and continued at once."""
    native = isinstance(translator, NativeResponsesStream)
    pending: asyncio.Future[None] | None = None
    kept = False
    try:
        async for piece in chunks:
            if pending is None and translator.response_id:
                pending = asyncio.ensure_future(
                    _remember(job, ctx, native, translator.response_id, items, None)
                )
            if translator.response is not None and not kept:
                kept = True  # the piece holds the final event: the record is in place before it leaves
                await asyncio.shield(_settled(pending))  # a client leaving now does not cancel the write
                if not native:
                    await asyncio.shield(
                        _remember(job, ctx, False, translator.response_id, items, translator.response)
                    )
            yield piece
        await asyncio.shield(_settled(pending))
    finally:
        await chunks.aclose()


async def _settled(pending: asyncio.Future[None] | None) -> None:
    if pending is not None:
        await pending


# -- GET/DELETE /v1/responses/{id}, input_items, cancel --------------------------------------
async def _follow_up(req: ClientRequest, response_id: str) -> tuple[auth.Caller, Stored]:
    await state.ensure_options_loaded()
    caller = await auth.authenticate(req.headers, req.path)
    stored = await responses_store.recall(response_id, caller.user.id)
    if stored is None:
        raise _not_found(response_id)
    return caller, stored


async def _upstream(
    req: ClientRequest, caller: auth.Caller, stored: Stored, method: str, sub_path: str
) -> Response:
    """A follow-up on a native response: sent to the channel that created it, answered verbatim."""
    channel = await channel_by_id(stored.channel_id)
    if channel is None or channel.status != ChannelStatus.ENABLED:
        raise _unavailable(stored.id)
    channel = with_key(channel, stored) if stored.key_index >= 0 else await key_choice.bind(channel)
    adaptor = adaptor_for(channel.type)
    ctx = RelayContext(
        mode=MODE,
        channel=channel,
        origin_model="",
        upstream_model="",
        path=req.path,
        query=req.query,
        body={},
        raw_body=req.body,
        client_headers=req.headers,
    )
    if needs_setup(adaptor):
        await adaptor.setup(ctx)
    if channel.type not in RESPONSES_TYPES or not speaks_responses(adaptor):
        raise _unavailable(stored.id)
    upstream = adaptor.responses_request(ctx, method, sub_path)
    resp = await pipeline.open_upstream(upstream, channel)
    raw = await http.read_body(resp)
    return Response(resp.status_code, raw, resp.headers.get("content-type", "application/json").encode())


async def retrieve(req: ClientRequest, response_id: str) -> Response:
    caller, stored = await _follow_up(req, response_id)
    if stored.native:
        return await _upstream(req, caller, stored, "GET", f"/{response_id}")
    if stored.response is None:
        raise _not_found(response_id)
    return Response(200, orjson.dumps(stored.response))


async def delete(req: ClientRequest, response_id: str) -> Response:
    caller, stored = await _follow_up(req, response_id)
    if stored.native:
        answer = await _upstream(req, caller, stored, "DELETE", f"/{response_id}")
        await responses_store.forget(response_id, caller.user.id)
        return answer
    await responses_store.forget(response_id, caller.user.id)
    return Response(200, orjson.dumps({"id": response_id, "object": "response.deleted", "deleted": True}))


async def input_items(req: ClientRequest, response_id: str) -> Response:
    caller, stored = await _follow_up(req, response_id)
    if stored.native:
        return await _upstream(req, caller, stored, "GET", f"/{response_id}/input_items")
    data = stored.items or []
    order = "asc" if "order=asc" in req.query else "desc"
    if order == "desc":
        data = list(reversed(data))
    body = {
        "object": "list",
        "data": data,
        "first_id": data[0].get("id") if data else None,
        "last_id": data[-1].get("id") if data else None,
        "has_more": False,
    }
    return Response(200, orjson.dumps(body))


async def cancel(req: ClientRequest, response_id: str) -> Response:
    caller, stored = await _follow_up(req, response_id)
    if stored.native:
        return await _upstream(req, caller, stored, "POST", f"/{response_id}/cancel")
    raise invalid_request(
        "Only responses created with background=true can be cancelled.", code="not_cancellable"
    )
