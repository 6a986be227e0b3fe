"""Non-text relay modes: image generation, edits and variations, text-to-speech, speech to text and
rerank. Multipart uploads (audio, image edits) are parsed (relay/edge/form_data.py), checked and
re-encoded for the chosen channel by one code path.

Images are priced per image (size, quality, n) in dollars in both price and ratio mode (New API
charged n × modelRatio tokens in ratio mode: a bug). Speech is billed per input character
(tts-*) or token. Rerank answers are normalised to {results, usage} whatever the provider.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import httpx
import orjson

from billing.pricing import quota_per_unit
from relay.adaptors import adaptor_for
from relay.adaptors.base import RelayContext, Usage
from relay.adaptors.openai import OpenAIAdaptor
from relay.adaptors.rerank import build_rerank_request, parse_rerank
from relay.edge.form_data import Upload, parse_form
from relay.edge.wire import ClientRequest, Response, StreamingResponse
from relay.errors import LocalError, UpstreamError, upstream_error_from_response
from relay.metering import audio_length, tokenizer
from relay.metering.charge import settle
from relay.modes import pipeline
from relay.modes.job import Job
from relay.upstream import http, proxies


def _image_error(message: str) -> LocalError:
    return LocalError(message, status=400, type="invalid_request_error", code="invalid_image_request")


def _openai_family(ctx: RelayContext, what: str) -> OpenAIAdaptor:
    adaptor = adaptor_for(ctx.channel.type)
    if not isinstance(adaptor, OpenAIAdaptor):
        raise LocalError(
            f"{what} is not supported by channel type {ctx.channel.type}",
            status=400,
            type="invalid_request_error",
            code="invalid_api_type",
        )
    return adaptor


async def _post(ctx: RelayContext, url: str, headers: dict[str, str], body: bytes) -> httpx.Response:
    try:
        resp = await http.client_for(proxies.of(ctx.channel)).post(url, headers=headers, content=body)
    except httpx.HTTPError as exc:
        raise http.network_error(exc) from None
    if resp.status_code // 100 != 2:
        raise upstream_error_from_response(resp.status_code, resp.content)
    return resp


async def _send_openai(ctx: RelayContext, adaptor: OpenAIAdaptor) -> httpx.Response:
    ctx.is_stream = False
    upstream = adaptor.build_request(ctx)
    return await _post(ctx, upstream.url, upstream.headers, upstream.body)


# -- images ---------------------------------------------------------------------------------------
SIZE_RATIO = {"256x256": 0.4, "512x512": 0.45, "1024x1024": 1.0, "1024x1792": 2.0, "1792x1024": 2.0}
DALLE2_SIZES = {"256x256", "512x512", "1024x1024"}
DALLE3_SIZES = {"1024x1024", "1024x1792", "1792x1024"}


def image_dollars(job: Job, size: str, quality: str, n: int) -> float:
    price = job.price.model_price if job.price.use_price else 0.0025 * job.price.model_ratio
    quality_ratio = 1.0
    if job.model == "dall-e-3" and quality == "hd":
        quality_ratio = 1.5 if size in ("1024x1792", "1792x1024") else 2.0
    return price * SIZE_RATIO.get(size, 1.0) * quality_ratio * n


def validate_image(body: dict[str, Any], model: str) -> tuple[str, str, int]:
    if not body.get("prompt"):
        raise _image_error("prompt is required")
    size = str(body.get("size") or "1024x1024")
    if "×" in size:
        raise _image_error(
            "size an unexpected error occurred in the parameter, please use 'x' instead of the multiplication sign '×'"
        )
    n = body.get("n") or 1
    if not isinstance(n, int) or isinstance(n, bool) or n < 1 or n > 10:
        raise _image_error("n must be an integer between 1 and 10")
    if model in ("dall-e", "dall-e-2") and size not in DALLE2_SIZES:
        raise _image_error("size must be one of 256x256, 512x512 or 1024x1024 for dall-e-2 or dall-e")
    quality = str(body.get("quality") or "standard")
    if model == "dall-e-3" and size not in DALLE3_SIZES:
        raise _image_error("size must be one of 1024x1024, 1024x1792 or 1792x1024 for dall-e-3")
    return size, quality, n


async def images(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    job = await pipeline.prepare(req, "images", "dall-e-2")
    try:
        size, quality, n = validate_image(job.body, job.model)
    except BaseException:
        await job.hold.refund()
        raise
    dollars = image_dollars(job, size, quality, n)
    quota = int(
        (
            Decimal(str(dollars)) * Decimal(str(quota_per_unit())) * Decimal(str(job.price.group_ratio))
        ).to_integral_value(ROUND_HALF_UP)
    )

    async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response:
        adaptor = _openai_family(ctx, "image generation")
        ctx.body.setdefault("model", job.model)
        resp = await _send_openai(ctx, adaptor)
        await settle(job, ctx, Usage(n, 0), tried, -1000, quota=quota, content=f"大小 {size}, 品质 {quality}")
        return Response(
            resp.status_code, resp.content, resp.headers.get("content-type", "application/json").encode()
        )

    return await pipeline.run(job, send)


# -- text to speech -------------------------------------------------------------------------------
async def speech(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    job = await pipeline.prepare(req, "audio_speech")
    text = job.body.get("input")
    if not isinstance(text, str) or not text:
        await job.hold.refund()
        raise LocalError(
            "input is required", status=400, type="invalid_request_error", code="invalid_audio_request"
        )
    units = len(text) if job.model.startswith("tts") else tokenizer.count_text(text, job.model)

    async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response:
        adaptor = _openai_family(ctx, "text to speech")
        resp = await _send_openai(ctx, adaptor)
        await settle(job, ctx, Usage(units, 0), tried, frt_ms=-1000)
        return Response(
            resp.status_code, resp.content, resp.headers.get("content-type", "audio/mpeg").encode()
        )

    return await pipeline.run(job, send)


# -- rerank ---------------------------------------------------------------------------------------
def count_rerank_prompt(body: dict[str, Any], model: str) -> int:
    total = tokenizer.count_text(str(body.get("query") or ""), model)
    for doc in body.get("documents") or []:
        text = (
            doc
            if isinstance(doc, str)
            else (doc.get("text") if isinstance(doc, dict) and "text" in doc else orjson.dumps(doc).decode())
        )
        total += tokenizer.count_text(str(text), model)
    return total


async def rerank(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    job = await pipeline.prepare(req, "rerank")
    try:
        if not job.body.get("query"):
            raise LocalError("query is empty", status=400, type="invalid_request_error", code="invalid_query")
        if not isinstance(job.body.get("documents"), list) or not job.body["documents"]:
            raise LocalError(
                "documents is empty", status=400, type="invalid_request_error", code="invalid_documents"
            )
    except BaseException:
        await job.hold.refund()
        raise
    job.prompt_tokens = count_rerank_prompt(job.body, job.model)

    async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response:
        upstream = build_rerank_request(ctx)
        resp = await _post(ctx, upstream.url, upstream.headers, upstream.body)
        try:
            data = orjson.loads(resp.content)
        except orjson.JSONDecodeError:
            raise UpstreamError(
                "invalid rerank response",
                status=500,
                type="upstream_error",
                code="unmarshal_response_body_failed",
            ) from None
        out, usage = parse_rerank(ctx, data, job.count_prompt())
        await settle(job, ctx, usage, tried, frt_ms=-1000)
        return Response(200, orjson.dumps(out))

    return await pipeline.run(job, send)


# -- multipart uploads (speech to text, image edits and variations) --------------------------------
async def prepare_multipart(
    req: ClientRequest, mode: str, model: str, probe: dict[str, Any], fields: dict[str, str]
) -> Job:
    """pipeline.prepare on a JSON stand-in of the form (model plus what the checks read, e.g. the
    prompt for the sensitive-word check); the job then carries the form's text fields."""
    from dataclasses import replace

    job = await pipeline.prepare(replace(req, body=orjson.dumps(dict(probe, model=model))), mode)
    job.body = dict(fields, model=model)
    return job


async def send_multipart(
    ctx: RelayContext, what: str, fields: dict[str, str], uploads: list[Upload]
) -> httpx.Response:
    """Re-encode the form for the channel (its URL and auth; Azure's deployment URL), with the
    mapped model; a non-2xx answer raises for the retry loop."""
    adaptor = _openai_family(ctx, what)
    ctx.is_stream = False
    headers = adaptor.request_headers(ctx)
    headers.pop("Content-Type", None)  # httpx sets it with the new boundary
    data = {k: v for k, v in fields.items() if k != "model"}
    data["model"] = ctx.upstream_model
    files = [(name, (filename, content, ctype)) for name, filename, content, ctype in uploads]
    try:
        resp = await http.client_for(proxies.of(ctx.channel)).post(
            adaptor.request_url(ctx), headers=headers, data=data, files=files
        )
    except httpx.HTTPError as exc:
        raise http.network_error(exc) from None
    if resp.status_code // 100 != 2:
        raise upstream_error_from_response(resp.status_code, resp.content)
    return resp


def _passthrough(resp: httpx.Response) -> Response:
    return Response(
        resp.status_code, resp.content, resp.headers.get("content-type", "application/json").encode()
    )


# -- speech to text -------------------------------------------------------------------------------
def audio_seconds(data: bytes, response: bytes) -> float:
    """The upload's own length (relay/metering/audio_length.py); otherwise the duration the upstream
    reports (verbose_json); otherwise an estimate from the size, never zero."""
    measured = audio_length.measured_seconds(data)
    if measured:
        return measured
    try:
        reported = float(orjson.loads(response).get("duration") or 0)
        if reported > 0:
            return reported
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        pass
    return audio_length.fallback_seconds(data)


async def transcription(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    import math

    fields, uploads = parse_form(req, code="invalid_audio_request")
    files = [u for u in uploads if u[0] == "file"]
    if not files:
        raise LocalError(
            "file is required", status=400, type="invalid_request_error", code="invalid_audio_request"
        )
    upload = files[-1]
    model = fields.get("model") or "whisper-1"
    job = await prepare_multipart(req, "audio_transcription", model, {}, fields)
    fields.setdefault("response_format", "json")

    async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response:
        resp = await send_multipart(ctx, "speech to text", fields, [upload])
        seconds = audio_seconds(upload[2], resp.content)
        tokens = round(math.ceil(seconds) / 60 * 1000)  # one minute = 1000 tokens
        await settle(job, ctx, Usage(tokens, 0), tried, frt_ms=-1000)
        return _passthrough(resp)

    return await pipeline.run(job, send)


# -- image edits and variations -------------------------------------------------------------------
IMAGE_FIELDS = ("image", "image[]", "mask")


def validate_image_form(
    fields: dict[str, str], uploads: list[Upload], model: str, edit: bool
) -> tuple[str, int]:
    if not any(u[0] in ("image", "image[]") for u in uploads):
        raise _image_error("image is required")
    # variations take no prompt: a stand-in lets the generation checks (size, n) apply unchanged
    body: dict[str, Any] = {"prompt": fields.get("prompt") if edit else "-", "size": fields.get("size")}
    raw_n = (fields.get("n") or "1").strip()
    try:
        body["n"] = int(raw_n)
    except ValueError:
        raise _image_error("n must be an integer between 1 and 10") from None
    size, _quality, n = validate_image(body, model)
    return size, n


async def _image_upload(req: ClientRequest, edit: bool) -> Response | StreamingResponse:
    what = "image edit" if edit else "image variation"
    fields, uploads = parse_form(req, code="invalid_image_request")
    model = fields.get("model") or "dall-e-2"
    probe = {"prompt": fields["prompt"]} if edit and fields.get("prompt") else {}
    job = await prepare_multipart(req, "images", model, probe, fields)
    try:
        size, n = validate_image_form(fields, uploads, model, edit)
    except BaseException:
        await job.hold.refund()
        raise
    dollars = image_dollars(job, size, "standard", n)
    quota = int(
        (
            Decimal(str(dollars)) * Decimal(str(quota_per_unit())) * Decimal(str(job.price.group_ratio))
        ).to_integral_value(ROUND_HALF_UP)
    )
    files = [u for u in uploads if u[0] in IMAGE_FIELDS]

    async def send(job: Job, ctx: RelayContext, tried: list[int]) -> Response:
        resp = await send_multipart(ctx, what, fields, files)
        await settle(job, ctx, Usage(n, 0), tried, -1000, quota=quota, content=f"大小 {size}")
        return _passthrough(resp)

    return await pipeline.run(job, send)


async def image_edits(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    return await _image_upload(req, edit=True)


async def image_variations(req: ClientRequest, **_params: str) -> Response | StreamingResponse:
    return await _image_upload(req, edit=False)
