"""Image input tokens (tasks-special.md §10.2): header parsing, the tile formula, data URIs, URL
fetches from a local image server (allowed only with MEDIA_FETCH_ALLOW_PRIVATE) and the refusal of
loopback/private addresses with it off; through the gateway, the real size reaches billing."""

from __future__ import annotations

import asyncio
import base64
import struct
import threading
import time
import zlib

import httpx
import pytest
from aiohttp import web

from billing.models import Log
from relay.errors import LocalError
from relay.metering import image_tokens as media
from relay.metering import tokenizer
from tests.conftest import live, make_channel, make_token, make_user, settle, start_gateway


def png(width: int, height: int, pad: int = 0) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", 13) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    return b"\x89PNG\r\n\x1a\n" + chunk + b"\0" * pad


def jpeg(width: int, height: int) -> bytes:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + b"\x01\x01\0\0\x01\0\x01\0\0"
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\0"
    return b"\xff\xd8" + app0 + sof + b"\xff\xd9"


def data_uri(raw: bytes, mime: str = "image/png") -> str:
    return f"data:{mime};base64,{base64.b64encode(raw).decode()}"


class ImageServer:
    """Serves /big.png (1024×1024, 3 MB), /small.png (512×512), /slow.png (512×512 after 1.5 s),
    /redirect → /big.png, /text, /huge."""

    def __init__(self) -> None:
        self.hits: list[str] = []
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)

    def _run(self, ready: threading.Event) -> None:
        async def handle(request: web.Request) -> web.StreamResponse:
            self.hits.append(request.path)
            if request.path == "/redirect":
                raise web.HTTPFound("/big.png")
            if request.path == "/text":
                return web.Response(text="not an image")
            if request.path == "/huge":
                return web.Response(body=b"\0" * (2 * 1024 * 1024 + 10), content_type="image/png")
            if request.path == "/slow.png":
                await asyncio.sleep(1.5)
            size = 1024 if request.path == "/big.png" else 512
            return web.Response(body=png(size, size, pad=3 * 1024 * 1024), content_type="image/png")

        loop = asyncio.new_event_loop()
        app = web.Application()
        app.router.add_get("/{name}", handle)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.url = f"http://127.0.0.1:{site._server.sockets[0].getsockname()[1]}"
        ready.set()
        loop.run_forever()


@pytest.fixture(scope="module")
def images() -> ImageServer:
    return ImageServer()


# -- units -------------------------------------------------------------------------------------------
def test_headers_and_tiles():
    assert media.image_size(png(640, 480)) == (640, 480)
    assert media.image_size(b"GIF89a" + struct.pack("<HH", 33, 44) + b"\0" * 8) == (33, 44)
    assert media.image_size(jpeg(1920, 1080)) == (1920, 1080)
    vp8x = b"RIFF\0\0\0\0WEBPVP8X" + b"\0" * 8 + (799).to_bytes(3, "little") + (599).to_bytes(3, "little")
    assert media.image_size(vp8x) == (800, 600)
    vp8 = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 10 + struct.pack("<HH", 300, 200)
    assert media.image_size(vp8) == (300, 200)
    assert media.image_size(b"not an image at all") is None
    # OpenAI's published examples: 1024² high = 765, 2048×4096 high = 1105
    assert media.tile_tokens(1024, 1024, 85, 170) == 765
    assert media.tile_tokens(2048, 4096, 85, 170) == 1105
    assert media.tile_tokens(512, 512, 2833, 5667) == 8500


def test_header_edge_cases():
    # a prefix cut before the size reads as "not yet", then the full header as the size
    big = png(640, 480)
    assert media.image_size(big[:20]) is None
    exif = b"\xff\xe1" + struct.pack(">H", 2 + 40_000) + b"Exif\0\0" + b"\0" * (40_000 - 6)
    photo = b"\xff\xd8" + exif + jpeg(4032, 3024)[2:]
    assert media.image_size(photo[:24 * 1024]) is None
    assert media.image_size(photo) == (4032, 3024)
    # GIF's 16-bit sizes are unsigned; a lossy WebP's top two bits are a scale hint
    assert media.image_size(b"GIF89a" + struct.pack("<HH", 40_000, 7) + b"\0" * 8) == (40_000, 7)
    vp8 = b"RIFF\0\0\0\0WEBPVP8 " + b"\0" * 10 + struct.pack("<HH", 300 | 0x4000, 200 | 0xC000)
    assert media.image_size(vp8) == (300, 200)
    # formats upstreams refuse stay unsupported even where imagesize could read them
    bmp = b"BM" + b"\0" * 16 + struct.pack("<ll", 10, 10) + b"\0" * 30
    assert media.image_size(bmp) is None
    assert media.image_size(b'<svg width="10" height="10"></svg>') is None
    assert media.image_size(b"") is None


async def test_part_rules_and_data_uris(settings):
    settings.GET_MEDIA_TOKEN = True
    settings.GET_MEDIA_TOKEN_NOT_STREAM = True
    uri = data_uri(png(1024, 1024))
    assert await media.image_part_tokens({"url": uri}, "gpt-4o", False) == 765
    assert await media.image_part_tokens({"url": uri, "detail": "auto"}, "gpt-4o-mini", True) == 4 * 5667 + 2833
    assert await media.image_part_tokens({"url": uri, "detail": "low"}, "gpt-4o", False) == 85
    assert await media.image_part_tokens({"url": "http://10.0.0.1/x.png"}, "claude-3-5-sonnet-20241022", False) == 255
    assert await media.image_part_tokens({"url": "http://10.0.0.1/x.png"}, "gemini-2.0-flash", False) == 255
    assert await media.image_part_tokens({"url": uri}, "glm-4v", False) == 1047
    settings.GET_MEDIA_TOKEN_NOT_STREAM = False
    assert await media.image_part_tokens({"url": uri}, "gpt-4o", False) == 255
    assert await media.image_part_tokens({"url": uri}, "gpt-4o", True) == 765
    settings.GET_MEDIA_TOKEN = False
    assert await media.image_part_tokens({"url": uri}, "gpt-4o-mini", True) == 3 * 2833
    settings.GET_MEDIA_TOKEN = True
    with pytest.raises(LocalError) as exc:
        await media.image_part_tokens({"url": "data:image/png;base64,@@@"}, "gpt-4o", True)
    assert exc.value.code == "count_token_messages_failed"


async def test_private_addresses_are_refused_without_a_connection(images, settings):
    settings.MEDIA_FETCH_ALLOW_PRIVATE = False
    hits = len(images.hits)
    for url in (f"{images.url}/big.png", "http://localhost:9/x.png", "http://10.1.2.3/x.png", "http://169.254.169.254/latest",
                "http://[::1]:9/x.png", "http://[::ffff:127.0.0.1]:9/x.png", "http://224.0.0.1/x.png", "http://0.0.0.0/x", "file:///etc/passwd"):
        with pytest.raises(LocalError) as exc:
            await media.url_size(url)
        assert exc.value.code == "count_token_messages_failed", url
    assert len(images.hits) == hits


async def test_fetches_when_allowed(images, settings):
    settings.MEDIA_FETCH_ALLOW_PRIVATE = True
    settings.MAX_FILE_DOWNLOAD_MB = 20
    assert await media.url_size(f"{images.url}/big.png") == (1024, 1024)
    assert await media.url_size(f"{images.url}/redirect") == (1024, 1024)
    with pytest.raises(LocalError, match="invalid content type"):
        await media.url_size(f"{images.url}/text")
    settings.MAX_FILE_DOWNLOAD_MB = 2
    with pytest.raises(LocalError, match="no size in its first 1024 KB"):  # only a header's worth is read
        await media.url_size(f"{images.url}/huge")
    settings.MAX_FILE_DOWNLOAD_MB = 1  # big.png is 3 MB, but its header arrives first: no full download
    assert await media.url_size(f"{images.url}/small.png") == (512, 512)


# -- through the gateway -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def open_gateway(django_db_setup, django_db_blocker):
    gw = start_gateway({"MEDIA_FETCH_ALLOW_PRIVATE": "true"})
    yield gw
    gw.stop()


def chat(gw, key: str, body: dict) -> httpx.Response:
    return httpx.post(f"{gw.v1}/chat/completions", headers={"Authorization": f"Bearer sk-{key}"}, json=body, timeout=30)


@pytest.mark.relay
@live
def test_gateway_bills_real_image_size_when_usage_is_missing(open_gateway, fake_upstream, images):
    make_channel(fake_upstream.base_url, key="nousage", models="gpt-4o")
    user = make_user("img1", quota=10_000_000)
    key = make_token(user).key
    part = {"type": "image_url", "image_url": {"url": f"{images.url}/big.png"}}
    messages = [{"role": "user", "content": [{"type": "text", "text": "what is this?"}, part]}]
    assert chat(open_gateway, key, {"model": "gpt-4o", "messages": messages}).status_code == 200
    small = {"type": "image_url", "image_url": {"url": data_uri(png(512, 512))}}
    messages2 = [{"role": "user", "content": [{"type": "text", "text": "and this?"}, small]}]
    assert chat(open_gateway, key, {"model": "gpt-4o", "messages": messages2, "max_tokens": 20}).status_code == 200
    settle()
    text_only = lambda msgs, p: tokenizer.count_messages(msgs, "gpt-4o") - tokenizer.image_tokens(p["image_url"], "gpt-4o")  # noqa: E731
    prompts = list(Log.objects.filter(user_id=user.pk).order_by("id").values_list("prompt_tokens", flat=True))
    assert prompts == [text_only(messages, part) + 765, text_only(messages2, small) + 255]


@pytest.mark.relay
@live
def test_a_client_leaving_while_its_stream_is_billed_is_still_charged(open_gateway, fake_upstream, images):
    """The upstream gives no usage, so the bill waits for the image prompt to be counted (1.5 s);
    the client has every content chunk and leaves before [DONE]. The charge must still land."""
    make_channel(fake_upstream.base_url, key="nousage", models="gpt-4o")
    user = make_user("img-leave", quota=10_000_000)
    key = make_token(user).key
    part = {"type": "image_url", "image_url": {"url": f"{images.url}/slow.png"}}
    body = {"model": "gpt-4o", "stream": True, "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}, part]}]}
    with httpx.stream("POST", f"{open_gateway.v1}/chat/completions", headers={"Authorization": f"Bearer sk-{key}"},
                      json=body, timeout=30) as resp:
        assert resp.status_code == 200
        for line in resp.iter_lines():
            if '"finish_reason":"stop"' in line.replace(" ", ""):
                break  # everything but [DONE] is here: hang up while the bill is being worked out
    time.sleep(2.5)  # the image fetch ends, the bill is written
    settle()
    logs = list(Log.objects.filter(user_id=user.pk).values_list("prompt_tokens", "completion_tokens", "quota"))
    assert len(logs) == 1
    prompt, completion, quota = logs[0]
    assert prompt > 255 and completion > 0 and quota > 0  # the image counted at its real size
    user.refresh_from_db()
    assert user.quota == 10_000_000 - quota and user.used_quota == quota


@pytest.mark.relay
@live
def test_gateway_refuses_loopback_image_urls_by_default(gateway, fake_upstream, images):
    make_channel(fake_upstream.base_url, key="img-refuse", models="gpt-4o")
    user = make_user("img2", quota=10_000_000)
    hits, sent = len(images.hits), len(fake_upstream.requests_for("img-refuse"))
    messages = [{"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": f"{images.url}/big.png"}}]}]
    r = chat(gateway, make_token(user).key, {"model": "gpt-4o", "messages": messages, "max_tokens": 10})
    assert r.status_code == 400 and r.json()["error"]["code"] == "count_token_messages_failed"
    assert "private" in r.json()["error"]["message"]
    assert len(images.hits) == hits and len(fake_upstream.requests_for("img-refuse")) == sent
    settle()
    user.refresh_from_db()
    assert user.quota == 10_000_000
