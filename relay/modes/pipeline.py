"""The text relay: chat completions, completions, embeddings and moderations.

Flow: authenticate → parse → price → reserve quota → pick a channel →
send through its adaptor (retrying on another channel when the failure is the channel's) →
relay the answer → settle the quota to the actual usage, or refund it, exactly once.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from typing import Any

import httpx
import orjson
from django.conf import settings

from billing import ledger
from billing.ledger import Account, QuotaError
from billing.pricing import PriceNotSet, pre_consume_estimate, price_for
from newapi_site.options import options
from relay import auth, rate_limit, sensitive, state
from relay.adaptors import adaptor_for
from relay.adaptors.base import (
    Adaptor,
    ParsedResponse,
    RelayContext,
    StreamTranslator,
    Usage,
    is_stream_response,
    needs_setup,
    upstream_events,
)
from relay.channels import affinity, key_choice, limits
from relay.channels import health as channel_health
from relay.channels.choice import Route
from relay.channels.types import ChannelType
from relay.edge.wire import ClientRequest, Response, StreamingResponse
from relay.errors import LocalError, RelayError, UpstreamError, invalid_request, upstream_error_from_response
from relay.metering import image_tokens as media
from relay.metering import tokenizer
from relay.metering.charge import quota_error, settle
from relay.metering.stream_budget import StreamBudget, cut_frames
from relay.modes.job import Job
from relay.state import ChannelInfo
from relay.streaming import SSE_HEADERS, IdleDeadline
from relay.upstream import http, proxies

log = logging.getLogger("newapi.relay")

DEFAULT_MODELS = {"moderations": "text-moderation-stable", "embeddings": ""}
# A gateway timeout may have reached the upstream (retrying could run it twice); 408 is the client.
NO_RETRY_STATUSES = {408, 504, 524}


def parse_body(req: ClientRequest) -> dict[str, Any]:
    try:
        body = orjson.loads(req.body) if req.body else None
    except orjson.JSONDecodeError as exc:
        raise invalid_request(f"Invalid request body: {exc}", code="invalid_request_body") from None
    if not isinstance(body, dict):
        raise invalid_request("Invalid request body: a JSON object is required", code="invalid_request_body")
    return body


def validate(mode: str, body: dict[str, Any], model: str) -> None:
    if not model:
        raise invalid_request("model is required", code="model_required")
    if mode == "chat":
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            raise invalid_request("field messages is required", code="invalid_text_request")
    elif mode == "completions":
        if body.get("prompt") is None:
            raise invalid_request("field prompt is required", code="invalid_text_request")
    elif mode in ("embeddings", "moderations"):  # noqa: SIM102
        if body.get("input") is None:
            raise invalid_request("field input is required", code="invalid_text_request")
    for key in ("max_tokens", "max_completion_tokens"):
        value = body.get(key)
        if value is not None and (
            not isinstance(value, int) or isinstance(value, bool) or value < 0 or value > 1 << 31
        ):
            raise invalid_request(f"{key} must be a non-negative integer", code="invalid_text_request")


def should_retry(err: RelayError, channel: ChannelInfo, pinned: bool) -> bool:
    if isinstance(err, LocalError) or pinned:
        return False
    status = err.status
    if status in NO_RETRY_STATUSES or 200 <= status < 300:
        return False
    if status == 400:
        return channel.type == ChannelType.ANTHROPIC  # it answers 400 for overload-like conditions
    # Every other status (429, 307, 5xx, and 401, 403, 404… which say this channel cannot serve)
    # may succeed on another channel.
    return True


def apply_status_mapping(err: RelayError, channel: ChannelInfo) -> None:
    mapped = channel.status_code_mapping.get(str(err.status))
    if mapped:
        try:
            err.status = int(mapped)
        except ValueError:
            pass


async def prepare(req: ClientRequest, mode: str, model_hint: str = "") -> Job:
    state_ready = state.ensure_options_loaded()
    await state_ready
    caller = await auth.authenticate(req.headers, req.path)
    if req.path.startswith("/v1/"):
        await rate_limit.check(caller.user.id)
    return await prepare_for(caller, req, mode, model_hint)


async def prepare_for(caller: auth.Caller, req: ClientRequest, mode: str, model_hint: str = "") -> Job:
    """Everything after authentication; also used for callers authenticated elsewhere (the playground)."""
    body = parse_body(req)
    model = str(body.get("model") or model_hint or DEFAULT_MODELS.get(mode, ""))
    if model and "model" not in body and mode in ("moderations", "embeddings"):
        body["model"] = model
    validate(mode, body, model)
    sensitive.check(mode, body)
    auth.check_ip(caller.token, req.client_ip)
    if caller.pinned_channel_id is None:
        auth.check_model_allowed(caller.token, model)
    accept_unset = bool(caller.user.setting.get("accept_unset_model_ratio_model"))
    try:
        try:
            price = price_for(model, caller.group, accept_unset)
        except PriceNotSet:  # or set a moment ago through another process?
            await state.caught_up()
            if options.loaded:
                raise
            await state.ensure_options_loaded()
            price = price_for(model, caller.group, accept_unset)
    except PriceNotSet:
        who = (
            "请设置或开始自用模式 (set it or enable self-use mode)"
            if caller.user.id == 1
            else "请联系管理员设置 (ask an administrator)"
        )
        raise LocalError(
            f"模型 {model} 倍率或价格未配置，{who}; Model {model} ratio or price not set",
            status=500,
            code="model_price_error",
        ) from None
    is_stream = bool(body.get("stream")) and mode in ("chat", "completions")
    max_tokens = 0
    if mode in ("chat", "completions", "claude"):
        max_tokens = max(int(body.get("max_tokens") or 0), int(body.get("max_completion_tokens") or 0))
    prompt_estimate = 0
    images = media.image_parts(body) if mode == "chat" and max_tokens and not price.use_price else []
    if max_tokens and not price.use_price:
        # The hold only needs an upper-ish bound: ~4 bytes of JSON per token. Exact counting
        # (and the ~110 MB of vocabularies it loads) waits until an answer lacks usage.
        prompt_estimate = (len(req.body) - media.inline_bytes(images)) // 4 + 1
        prompt_estimate += sum(tokenizer.image_tokens(p, model) for p in images)
    estimate = pre_consume_estimate(price, prompt_estimate, max_tokens)
    acct = Account(caller.user.id, caller.token.id, not caller.token.unlimited_quota)
    try:
        hold = await ledger.reserve(acct, estimate)
    except QuotaError as exc:
        raise quota_error(exc) from None
    job = Job(req, mode, caller, body, model, price, is_stream, hold, estimate=estimate)
    if images:
        await hold_for_images(job, max_tokens)
    return job


async def hold_for_images(job: Job, max_tokens: int) -> None:
    """Images are sized (URLs fetched) only once the key has shown it can pay; the hold then grows
    to the estimate with their real size, or the request is refused and its hold returned."""
    try:
        job.prompt_tokens = await media.count_chat_prompt(job.body, job.model, job.is_stream)
        full = pre_consume_estimate(job.price, job.prompt_tokens, max_tokens)
        if full > job.estimate:
            await ledger.reserve_more(job.hold, full - job.estimate)
            job.estimate = full
    except BaseException as exc:
        await job.hold.refund()
        if isinstance(exc, QuotaError):
            raise quota_error(exc) from None
        raise


def make_context(job: Job, channel: ChannelInfo) -> RelayContext:
    upstream_model = channel.model_mapping.get(job.model, job.model)
    body = dict(job.body)  # each attempt converts its own copy
    client_wants_usage = (
        bool((body.get("stream_options") or {}).get("include_usage")) if job.is_stream else False
    )
    ctx = RelayContext(
        mode=job.mode,
        channel=channel,
        origin_model=job.model,
        upstream_model=upstream_model,
        path=job.req.path,
        query=job.req.query,
        body=body,
        raw_body=job.req.body,
        client_headers=job.req.headers,
        is_stream=job.is_stream,
        client_wants_usage=client_wants_usage,
        options=options,
    )
    ctx.extra["request_id"] = job.req.request_id
    return ctx


async def relay(req: ClientRequest, mode: str, model_hint: str = "") -> Response | StreamingResponse:
    try:
        return await run(await prepare(req, mode, model_hint))
    except UpstreamError as err:
        if err.status == 429:  # New API's wording for the OpenAI endpoints' final 429
            err.message = "当前分组上游负载已饱和，请稍后再试 (upstream is saturated, try again later)"
        raise


async def run(job: Job, sender: Sender | None = None) -> Response | StreamingResponse:
    """attempt_all, refunding the reservation on any failure (exactly once: Hold guards it)."""
    try:
        return await attempt_all(job, sender or send)
    except BaseException:
        await job.hold.refund()
        raise


async def relay_as(caller: auth.Caller, req: ClientRequest, mode: str) -> Response | StreamingResponse:
    """The relay for a caller authenticated by other means (the playground's dashboard session).

    A caller whose token id is 0 and unlimited is billed on the user alone (settlement skips token 0).
    """
    await state.ensure_options_loaded()
    return await run(await prepare_for(caller, req, mode))


Sender = Callable[[Job, RelayContext, list[int]], Awaitable[Response | StreamingResponse]]


async def attempt_all(job: Job, sender: Sender) -> Response | StreamingResponse:
    """Send through `sender` on the chosen channel, and on another one while the failure is the
    channel's (shared by every relay mode)."""
    caller = job.caller
    route = Route(
        caller, job.model, affinity=affinity.key_for(caller.user.id, caller.token.id, job.model, job.body)
    )
    channel = await route.first()
    while True:
        attempt = channel
        try:
            if channel.keys:  # a multi-key channel's key for this attempt
                attempt = await key_choice.bind(channel)
            answer = await sender(job, make_context(job, attempt), route.tried)
            if route.affinity:
                await route.served(channel)
            return answer
        except UpstreamError as err:
            apply_status_mapping(err, attempt)
            other_key = await channel_health.on_upstream_error(attempt, err)
            nxt = None
            if should_retry(err, channel, route.pinned is not None):
                nxt = await again(route, channel, attempt.key_index) if other_key else await route.another()
            if nxt is None:
                raise
            log.info(
                "retrying request %s after channel #%s failed with %s",
                job.req.request_id,
                channel.id,
                err.status,
            )
            channel = nxt


async def again(route: Route, channel: ChannelInfo, failed_key: int) -> ChannelInfo | None:
    """The same channel once more, without the key just disabled (others remain), counted as a
    retry like any other; another channel when this one has reached its rate limit."""
    if len(route.tried) > route.retries:
        return None
    if limits.limited(channel) and await limits.admit([channel]) is None:
        return await route.another()
    route.tried.append(channel.id)
    return replace(channel, live_keys=tuple(i for i in channel.live_keys if i != failed_key))


async def open_upstream(upstream, channel: ChannelInfo | None = None) -> httpx.Response:  # type: ignore[no-untyped-def]
    """Send one upstream request (through `channel`'s proxy, if it has one); a non-2xx answer
    becomes an UpstreamError (body read, closed)."""
    proxy = proxies.of(channel) if channel is not None else ""
    resp = await http.send(upstream.method, upstream.url, upstream.headers, upstream.body, proxy)
    if resp.status_code // 100 != 2:
        try:
            body = await resp.aread()
        except httpx.HTTPError:
            body = b""
        finally:
            await resp.aclose()
        raise upstream_error_from_response(resp.status_code, body)
    return resp


def streaming_response(
    job: Job,
    ctx: RelayContext,
    adaptor: Adaptor,
    translator: StreamTranslator,
    resp: httpx.Response,
    tried: list[int],
) -> StreamingResponse:
    """The SSE answer; its on_close refunds the hold if the stream never got to settle."""
    billing: list[asyncio.Future] = []  # the stream's bill, once stream_body has started it

    async def on_close() -> None:
        await resp.aclose()
        if billing:
            # A client that left while the bill was being worked out (an image prompt being
            # fetched, say) must not get a refund that beats the charge: the bill decides.
            try:
                await asyncio.shield(billing[0])
            except Exception:
                log.exception("billing stream request %s failed", job.req.request_id)
        await job.hold.refund()  # no-op when the stream already settled

    return StreamingResponse(
        200,
        stream_body(job, ctx, adaptor, translator, resp, tried, billing),
        list(SSE_HEADERS),
        on_close,
    )


async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response | StreamingResponse:
    adaptor = adaptor_for(ctx.channel.type)
    if needs_setup(adaptor):
        await adaptor.setup(ctx)
    resp = await open_upstream(adaptor.build_request(ctx), ctx.channel)
    content_type = resp.headers.get("content-type", "")
    if ctx.is_stream and is_stream_response(adaptor, content_type):
        return streaming_response(job, ctx, adaptor, adaptor.stream_translator(ctx), resp, tried)
    raw = await http.read_body(resp)
    parsed = adaptor.parse_response(ctx, resp.status_code, raw, content_type)
    if parsed.usage is None:
        await job.count_prompt_media()
    usage = parsed.usage or fallback_usage(job, parsed)
    # Settled before the answer leaves: a client that reads its balance or sends its next request
    # right after this one must see it charged (redis-py yields before it writes, so billing
    # "after the send" would reach Redis after the client already has its answer).
    await settle(job, ctx, usage, tried, frt_ms=-1000)
    return Response(parsed.status, parsed.body, parsed.content_type.encode() or b"application/json")


def fallback_usage(job: Job, parsed: ParsedResponse) -> Usage:
    completion = tokenizer.count_text(parsed.completion_text, job.model) if parsed.completion_text else 0
    return Usage(job.count_prompt(), completion)


async def stream_body(
    job: Job,
    ctx: RelayContext,
    adaptor: Adaptor,
    translator: StreamTranslator,
    resp: httpx.Response,
    tried: list[int],
    billing: list[asyncio.Future],
) -> AsyncGenerator[bytes, None]:
    deadline = IdleDeadline(_streaming_timeout(ctx.upstream_model))
    budget = StreamBudget(job)
    first_output_at: float | None = None
    finished = False
    refused: LocalError | None = None
    try:
        events = upstream_events(adaptor, http.body_chunks(resp)).__aiter__()
        while True:
            try:
                event, data = await deadline.next(events)
            except StopAsyncIteration:
                break
            except TimeoutError:
                log.warning(
                    "stream idle for %.0fs, closing (request %s)", deadline.seconds, job.req.request_id
                )
                break
            out = translator.feed(event, data)
            if first_output_at is None and translator.first_output:
                first_output_at = time.time()
            for piece in out:
                yield piece
            if budget.over(translator.text_parts):
                short = await budget.extend()
                if short is not None:
                    refused = quota_error(short)
                    log.info("stream of request %s cut: its cost passed the balance", job.req.request_id)
                    break
        finished = refused is None
    except (httpx.HTTPError, ValueError) as exc:
        log.warning("upstream stream broke for request %s: %s", job.req.request_id, exc)
    finally:
        deadline.close()
        # A client leaving now cancels this task (relay/edge/asgi.py): the bill for what arrived is
        # shielded so that it is written to the end all the same, never cut off halfway.
        billing.append(
            asyncio.ensure_future(_bill_stream(job, ctx, resp, translator, tried, first_output_at, budget))
        )
        await asyncio.shield(billing[0])
    if finished:
        for piece in translator.finish():
            yield piece
    elif refused is not None:
        for piece in cut_frames(job.mode, refused):
            yield piece


async def _bill_stream(  # type: ignore[no-untyped-def]
    job: Job,
    ctx: RelayContext,
    resp: httpx.Response,
    translator,
    tried: list[int],
    first_output_at: float | None,
    budget: StreamBudget,
) -> None:
    await resp.aclose()
    await budget.done()
    if translator.usage is None and translator.text:
        await job.count_prompt_media()
    usage = stream_usage(job, translator)
    if usage.completion_tokens == 0 and translator.usage is None:
        await job.hold.refund()  # a failed or empty reply costs nothing
    else:
        frt = int(((first_output_at or time.time()) - job.req.started) * 1000)
        await settle(job, ctx, usage, tried, frt_ms=frt)
    ctx.extra["final_usage"] = usage


def _streaming_timeout(model: str) -> float:
    base = float(settings.STREAMING_TIMEOUT or 60)
    return base * 2 if model.startswith(("o1", "o3")) else base


def stream_usage(job: Job, translator) -> Usage:  # type: ignore[no-untyped-def]
    if translator.usage is not None:
        return translator.usage
    text = translator.text
    completion = tokenizer.count_text(text, job.model) + 7 * translator.tool_calls if text else 0
    return Usage(job.count_prompt() if completion else 0, completion)
