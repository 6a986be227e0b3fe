"""A fake Midjourney-Proxy and Suno API, served for real on 127.0.0.1 by aiohttp in a thread.

Midjourney (auth `mj-api-secret`, any key starting with `mj-key`): POST /mj/submit/* creates a task
(`mj-<n>`) and answers code 1; a prompt containing `banned` answers code 24 (refused), `code21` answers
21 (already exists, finished), `code22` answers 22 (queued), `code3` answers 3 (no account instance).
/submit/upload-discord-images answers a list of URLs; /insight-face/swap creates a task;
GET /mj/task/<id>/image-seed answers a seed. Tasks advance when the test calls
`advance(id, status=..., progress=..., fail_reason=...)`; `POST /mj/task/list-by-condition` returns
their DTOs. GET /img/<id>.png serves an image.
Suno (auth `Authorization: Bearer suno-key…`): POST /suno/submit/{MUSIC,LYRICS} → `{"code":"success","data":"suno-<n>"}`;
a key listed in `suno_fail` answers that HTTP status instead;
POST /suno/fetch returns the tasks' current state. Every request is recorded in `requests`.
"""

from __future__ import annotations

import itertools
import json
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.fakes.server import ThreadedServer

PNG = b"\x89PNG\r\n\x1a\n" + b"fake-image-bytes"


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeTaskUpstream(ThreadedServer):
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[Seen] = field(default_factory=list)
    mj: dict[str, dict[str, Any]] = field(default_factory=dict)
    suno: dict[str, dict[str, Any]] = field(default_factory=dict)
    suno_fail: dict[str, int] = field(default_factory=dict)  # channel key → HTTP status of its submits

    def __post_init__(self) -> None:
        self._ids = itertools.count(1)

    def advance(self, task_id: str, **fields: Any) -> None:
        store = self.mj if task_id in self.mj else self.suno
        store[task_id].update(fields)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raw = await request.read()
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = raw
        self.requests.append(Seen(request.method, request.path, dict(request.headers), body))
        path = request.path
        if path.startswith("/img/"):
            return web.Response(body=PNG, content_type="image/png")
        if "/mj/" in path:
            if not request.headers.get("mj-api-secret", "").startswith("mj-key"):
                return web.json_response({"code": 4, "description": "bad secret"}, status=401)
            return self._mj(path, body)
        if path.startswith("/suno/"):
            key = request.headers.get("Authorization", "").removeprefix("Bearer ")
            if not key.startswith("suno-key"):
                return web.json_response({"code": "unauthorized", "message": "bad key"}, status=401)
            if path.startswith("/suno/submit/") and key in self.suno_fail:
                return web.json_response({"code": "upstream_error", "message": "busy"}, status=self.suno_fail[key])
            return self._suno(path, body)
        return web.json_response({"error": "not found"}, status=404)

    def _new_mj(self, prompt: str) -> str:
        task_id = f"mj-{next(self._ids)}"
        self.mj[task_id] = {
            "id": task_id, "action": "IMAGINE", "prompt": prompt, "promptEn": "",
            "status": "SUBMITTED", "progress": "0%", "submitTime": int(time.time() * 1000), "startTime": 0,
            "finishTime": 0, "imageUrl": "", "failReason": "", "buttons": [], "properties": {"finalPrompt": "p"},
        }
        return task_id

    def _mj(self, path: str, body: Any) -> web.Response:
        if path.endswith("/task/list-by-condition"):
            ids = body.get("ids", []) if isinstance(body, dict) else []
            return web.json_response([self.mj[i] for i in ids if i in self.mj])
        if path.endswith("/image-seed"):
            return web.json_response({"code": 1, "description": "ok", "result": "seed-1234", "properties": {"x": 1}, "extra": "dropped"})
        if path.endswith("/insight-face/swap"):
            return web.json_response({"code": 1, "description": "提交成功", "result": self._new_mj("InsightFace")})
        if path.endswith("/submit/upload-discord-images"):
            return web.json_response({"code": 1, "description": "ok", "result": [f"{self.base_url}/img/up.png"]})
        if "/submit/" in path:
            prompt = str((body or {}).get("prompt", "")) if isinstance(body, dict) else ""
            if "banned" in prompt:
                return web.json_response({"code": 24, "description": "banned prompt", "result": ""})
            if "code3" in prompt:
                return web.json_response({"code": 3, "description": "no available account instance", "result": ""})
            task_id = self._new_mj(prompt)
            if "code21" in prompt:
                props = {"imageUrl": f"{self.base_url}/img/{task_id}.png", "status": "SUCCESS"}
                return web.json_response({"code": 21, "description": "exists", "result": task_id, "properties": props})
            if "code22" in prompt:
                return web.json_response({"code": 22, "description": "queued", "result": task_id, "properties": {}})
            return web.json_response({"code": 1, "description": "提交成功", "result": task_id, "properties": {}})
        return web.json_response({"code": 4, "description": "unknown path"}, status=404)

    def _suno(self, path: str, body: Any) -> web.Response:
        if path == "/suno/fetch":
            ids = body.get("ids", []) if isinstance(body, dict) else []
            return web.json_response({"code": "success", "message": "", "data": [self.suno[i] for i in ids if i in self.suno]})
        action = path.rsplit("/", 1)[-1]
        task_id = f"suno-{next(self._ids)}"
        self.suno[task_id] = {
            "task_id": task_id, "action": action, "status": "SUBMITTED", "fail_reason": "",
            "submit_time": int(time.time()), "start_time": 0, "finish_time": 0, "data": None,
        }
        return web.json_response({"code": "success", "message": "", "data": task_id})
