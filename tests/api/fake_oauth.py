"""A real HTTP server on 127.0.0.1 playing an OIDC provider and a WeChat login server."""

from __future__ import annotations

import asyncio
import threading

from aiohttp import web


class FakeOAuth:
    def __init__(self) -> None:
        self.users: dict[str, dict] = {}  # code -> userinfo
        self.port = 0
        self.token_requests: list[dict] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def _token(self, request: web.Request) -> web.Response:
        form = dict(await request.post())
        self.token_requests.append(form)
        code = form.get("code", "")
        if code not in self.users:
            return web.json_response({"error": "invalid_grant"}, status=400)
        return web.json_response({"access_token": f"at-{code}", "token_type": "bearer"})

    async def _userinfo(self, request: web.Request) -> web.Response:
        code = request.headers.get("Authorization", "").removeprefix("Bearer at-")
        return web.json_response(self.users.get(code, {}))

    async def _wechat(self, request: web.Request) -> web.Response:
        if request.headers.get("Authorization") != "wechat-server-token":
            return web.json_response({"success": False, "message": "bad token"})
        code = request.query.get("code", "")
        return web.json_response({"success": code == "good", "message": "", "data": "wx-openid-1" if code == "good" else ""})

    def start(self) -> FakeOAuth:
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            app = web.Application()
            app.router.add_post("/token", self._token)
            app.router.add_get("/userinfo", self._userinfo)
            app.router.add_get("/api/wechat/user", self._wechat)
            runner = web.AppRunner(app)
            loop.run_until_complete(runner.setup())
            site = web.TCPSite(runner, "127.0.0.1", 0)
            loop.run_until_complete(site.start())
            self.port = site._server.sockets[0].getsockname()[1]
            ready.set()
            loop.run_forever()

        threading.Thread(target=run, daemon=True).start()
        ready.wait(10)
        return self
