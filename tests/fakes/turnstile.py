"""Cloudflare Turnstile's siteverify on 127.0.0.1: success only for the response "good-token"."""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import parse_qs

from aiohttp import web


class FakeTurnstile:
    def __init__(self) -> None:
        self.forms: list[dict[str, list[str]]] = []
        self.port = 0

    def start(self) -> FakeTurnstile:
        ready = threading.Event()
        threading.Thread(target=self._run, args=(ready,), daemon=True).start()
        ready.wait(10)
        return self

    def _run(self, ready: threading.Event) -> None:
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        app = web.Application()
        app.router.add_post("/siteverify", self._verify)
        runner = web.AppRunner(app, access_log=None)
        loop.run_until_complete(runner.setup())
        site = web.TCPSite(runner, "127.0.0.1", 0)
        loop.run_until_complete(site.start())
        self.port = site._server.sockets[0].getsockname()[1]
        ready.set()
        loop.run_forever()

    async def _verify(self, request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode())
        self.forms.append(form)
        return web.json_response({"success": form.get("response") == ["good-token"], "error-codes": []})

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/siteverify"
