"""Cloudflare Turnstile's siteverify on 127.0.0.1: success only for the response "good-token"."""

from __future__ import annotations

from urllib.parse import parse_qs

from aiohttp import web

from tests.fakes.server import ThreadedServer


class FakeTurnstile(ThreadedServer):
    def __init__(self) -> None:
        self.forms: list[dict[str, list[str]]] = []
        self.host = "127.0.0.1"
        self.port = 0

    def add_routes(self, app: web.Application) -> None:
        app.router.add_post("/siteverify", self._handle)

    async def _handle(self, request: web.Request) -> web.Response:
        form = parse_qs((await request.read()).decode())
        self.forms.append(form)
        return web.json_response({"success": form.get("response") == ["good-token"], "error-codes": []})

    @property
    def url(self) -> str:
        return f"{self.base_url}/siteverify"
