"""Image input tokens for chat prompts: each image counted in tiles from its real size.

Dimensions come from the image's own header (PNG, GIF, JPEG, WebP), read by `imagesize` (no
Pillow) from a data URI or from a URL fetched progressively until the header is readable (at most
HEADER_READ_LIMIT bytes, and never past MAX_FILE_DOWNLOAD_MB). imagesize gets only the prefix read
so far, as an in-memory file: it never downloads or seeks past it, and a header not yet complete
reads as "not yet", so the same bounded prefix works for all four formats. A request's fetches are bounded:
at most MEDIA_FETCH_MAX_IMAGES URLs (further ones count at the flat estimate), at most
MEDIA_FETCH_CONCURRENCY at a time, all within MEDIA_FETCH_DEADLINE_SECONDS; the relay fetches
only after the request's quota is held. URLs are fetched only from public addresses: the host is
resolved, every address must be global, and the connection goes to the checked address itself (no
second lookup for DNS rebinding to change), redirects re-checked hop by hop.
Claude and Gemini models are priced at 3×base without a download (their channels bill images
their own way), decided by model name because the prompt is counted before a channel is chosen.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import math
import socket
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import httpx
import imagesize
from django.conf import settings

from newapi_site import net_guard
from relay.errors import LocalError
from relay.metering import tokenizer

MAX_REDIRECTS = 3
HEADER_STEPS = (8 * 1024, 24 * 1024, 64 * 1024)
# Every supported format has its size within the first few KB; a JPEG's metadata segments (EXIF,
# ICC profile) can push its frame header further, but never this far in practice.
HEADER_READ_LIMIT = 1024 * 1024


def media_error(message: str) -> LocalError:
    return LocalError(message, status=400, type="invalid_request_error", code="count_token_messages_failed")


# -- dimensions from headers ---------------------------------------------------------------------
def _kind(data: bytes) -> str | None:
    """Which supported format the bytes start with (the formats OpenAI accepts as image input)."""
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        return "png"
    if data[:6] in (b"GIF87a", b"GIF89a"):
        return "gif"
    if data[:2] == b"\xff\xd8":
        return "jpeg"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "vp8" if data[12:16] == b"VP8 " else "webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """(width, height) from a PNG, GIF, JPEG or WebP header; None when not (yet) decodable.

    Other formats imagesize knows (BMP, TIFF, SVG, HEIF...) stay refused: upstreams reject them, and
    SVG would mean parsing untrusted XML. The bytes go in as a file object: imagesize reads a
    `bytes` argument as a path."""
    kind = _kind(data)
    if kind is None:
        return None
    width, height = imagesize.get(io.BytesIO(data), exif_rotation=False)
    if kind == "gif" and len(data) >= 10:
        # imagesize reads GIF's unsigned 16-bit fields as signed: a width over 32767 comes back negative
        width, height = width & 0xFFFF, height & 0xFFFF
    elif kind == "vp8" and width > 0:
        # a lossy WebP's top two bits are an upscale hint, not part of the size; imagesize keeps them
        width, height = width & 0x3FFF, height & 0x3FFF
    if width <= 0 or height <= 0:
        return None  # imagesize answers (-1, -1) when the header is not (yet) all there
    return width, height


def tile_tokens(width: int, height: int, base: int, tile: int) -> int:
    short, long = sorted((width, height))
    if short > 768:
        long = math.ceil(long * 768 / short)
        short = 768
    return math.ceil(short / 512) * math.ceil(long / 512) * tile + base


# -- sources ---------------------------------------------------------------------------------------
def data_uri_size(url: str) -> tuple[int, int]:
    payload = url.split(",", 1)[1] if "," in url else url
    payload = "".join(payload.split())
    for limit in (1 << 16, 1 << 20, None):  # a header is near the start; decode more only if needed
        part = payload if limit is None else payload[: limit - limit % 4]
        try:
            size = image_size(base64.b64decode(part + "=" * (-len(part) % 4)))
        except (binascii.Error, ValueError):
            raise media_error("image data is not valid base64") from None
        if size or limit is None or len(part) == len(payload):
            break
    if not size:
        raise media_error("unsupported or unreadable image")
    return size


async def resolve_public(host: str, port: int) -> str:
    """One address for host, after checking every address it resolves to."""
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise media_error(f"cannot resolve image host {host}") from None
    addresses = [str(info[4][0]) for info in infos]
    if not addresses:
        raise media_error(f"cannot resolve image host {host}")
    if not net_guard.all_allowed(addresses):
        raise media_error("image URL points to a private, loopback or reserved address")
    return addresses[0]


async def url_size(url: str) -> tuple[int, int]:
    cap = min(settings.MAX_FILE_DOWNLOAD_MB * 1024 * 1024, HEADER_READ_LIMIT)
    async with httpx.AsyncClient(
        follow_redirects=False, timeout=httpx.Timeout(20.0, connect=5.0), trust_env=False
    ) as client:
        for _ in range(MAX_REDIRECTS + 1):
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise media_error("image URL must be http or https")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            ip = await resolve_public(parts.hostname, port)
            netloc = (f"[{ip}]" if ":" in ip else ip) + f":{port}"
            target = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
            host_header = parts.netloc.rsplit("@", 1)[-1]
            # identity: the bytes read are the bytes parsed (no decompression to bound)
            headers = {"Host": host_header, "Accept-Encoding": "identity"}
            request = client.build_request(
                "GET", target, headers=headers, extensions={"sni_hostname": parts.hostname}
            )
            try:
                resp = await client.send(request, stream=True)
            except httpx.HTTPError as exc:
                raise media_error(f"image download failed: {type(exc).__name__}") from None
            try:
                if resp.status_code in (301, 302, 303, 307, 308) and resp.headers.get("location"):
                    url = urljoin(url, resp.headers["location"])
                    continue
                return await _read_size(resp, cap)
            except httpx.HTTPError as exc:
                raise media_error(f"image download failed: {type(exc).__name__}") from None
            finally:
                await resp.aclose()
    raise media_error("too many redirects fetching the image")


async def _read_size(resp: httpx.Response, cap: int) -> tuple[int, int]:
    if resp.status_code != 200:
        raise media_error(f"image download failed with status {resp.status_code}")
    ctype = resp.headers.get("content-type", "").split(";")[0].strip().lower()
    if not (ctype.startswith("image/") or ctype == "application/octet-stream"):
        raise media_error(f"invalid content type for an image: {ctype or 'none'}")
    if resp.headers.get("content-encoding", "identity").strip().lower() not in ("", "identity"):
        raise media_error("compressed image responses are not supported")
    # No Content-Length refusal: only the header is read, and the cap bounds what is read.
    data = bytearray()
    steps = iter(HEADER_STEPS)
    next_check = next(steps)
    async for chunk in resp.aiter_raw():
        data += chunk
        if len(data) >= next_check or len(data) >= cap:
            size = image_size(bytes(data[:cap]))
            if size:
                return size  # the header is enough: stop downloading
            if len(data) >= cap:
                if cap < settings.MAX_FILE_DOWNLOAD_MB * 1024 * 1024:
                    raise media_error(
                        f"unsupported or unreadable image: no size in its first {cap // 1024} KB"
                    )
                raise media_error(
                    f"file size exceeds maximum allowed size: {settings.MAX_FILE_DOWNLOAD_MB}MB"
                )
            next_check = next(steps, next_check * 2)
    size = image_size(bytes(data))
    if not size:
        raise media_error("unsupported or unreadable image")
    return size


# -- tokens ----------------------------------------------------------------------------------------
def _rule_tokens(image_url: Any, model: str, is_stream: bool) -> int | None:
    """Tokens decided without looking at the image, or None when its real size is needed."""
    detail = (image_url.get("detail") if isinstance(image_url, dict) else None) or "high"
    if model.startswith("glm-4v"):
        return 1047
    if detail == "low":
        return 85
    if not is_stream and not settings.GET_MEDIA_TOKEN_NOT_STREAM:
        return 255
    base = 2833 if model.startswith("gpt-4o-mini") else 85
    if not settings.GET_MEDIA_TOKEN or model.startswith(("claude", "gemini")):
        return 3 * base
    return None


def _url_of(image_url: Any) -> str:
    return str((image_url.get("url") if isinstance(image_url, dict) else image_url) or "")


async def image_part_tokens(image_url: Any, model: str, is_stream: bool) -> int:
    ruled = _rule_tokens(image_url, model, is_stream)
    if ruled is not None:
        return ruled
    base, tile = (2833, 5667) if model.startswith("gpt-4o-mini") else (85, 170)
    url = _url_of(image_url)
    if url.startswith("http"):
        width, height = await url_size(url)
    else:
        width, height = data_uri_size(url)
    return tile_tokens(width, height, base, tile)


def image_parts(body: dict[str, Any]) -> list[Any]:
    out: list[Any] = []
    for msg in body.get("messages") or []:
        content = msg.get("content") if isinstance(msg, dict) else None
        if isinstance(content, list):
            out.extend(
                p.get("image_url") for p in content if isinstance(p, dict) and p.get("type") == "image_url"
            )
    return out


def inline_bytes(parts: list[Any]) -> int:
    """Bytes of data-URI images in a body: not text, so not part of a bytes-per-token estimate."""
    return sum(len(u) for u in map(_url_of, parts) if not u.startswith("http"))


async def _all(coros: list[Any]) -> list[int]:
    """Like gather, but the first failure cancels the other downloads instead of leaving them running."""
    try:
        async with asyncio.TaskGroup() as group:
            tasks = [group.create_task(c) for c in coros]
    except BaseExceptionGroup as failed:
        raise failed.exceptions[0] from None
    return [t.result() for t in tasks]


async def count_chat_prompt(body: dict[str, Any], model: str, is_stream: bool) -> int:
    """tokenizer.count_messages with each image counted from its real size, URLs fetched within
    the per-request limits (beyond MEDIA_FETCH_MAX_IMAGES an image counts at the flat estimate)."""
    parts = image_parts(body)
    gate = asyncio.Semaphore(max(settings.MEDIA_FETCH_CONCURRENCY, 1))
    fetches = settings.MEDIA_FETCH_MAX_IMAGES

    async def gated(part: Any) -> int:
        async with gate:
            return await image_part_tokens(part, model, is_stream)

    counts: list[Any] = []
    for part in parts:
        if _rule_tokens(part, model, is_stream) is None and _url_of(part).startswith("http"):
            if fetches <= 0:
                counts.append(tokenizer.image_tokens(part, model))
                continue
            fetches -= 1
            counts.append(gated(part))
        else:
            counts.append(image_part_tokens(part, model, is_stream))
    pending = [c for c in counts if not isinstance(c, int)]
    try:
        async with asyncio.timeout(settings.MEDIA_FETCH_DEADLINE_SECONDS):
            done = iter(await _all(pending))
    except TimeoutError:
        raise media_error(
            f"image downloads took longer than {settings.MEDIA_FETCH_DEADLINE_SECONDS}s"
        ) from None
    real = [c if isinstance(c, int) else next(done) for c in counts]
    flat = sum(tokenizer.image_tokens(p, model) for p in parts)
    return tokenizer.count_messages(body.get("messages") or [], model, body.get("tools")) - flat + sum(real)
