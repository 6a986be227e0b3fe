"""Every entry point chooses its channel in one place: the same refusal when no channel serves the
model (chat, Realtime, Midjourney, Suno), and a mode only some channel types speak (Realtime) passes
the others over."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from newapi_site import bus
from newapi_site.roles import ROLE_ADMIN
from tests.conftest import live, make_channel, make_token, make_user, propagated
from tests.relay.test_realtime import MODEL, auth_kwargs, persona, realtime_upstream, refused, session, session_log, ws_url

pytestmark = [live, pytest.mark.relay]
__all__ = ["realtime_upstream"]  # the fixture, imported for this module's tests

ANTHROPIC = 14


def forget_earlier_tests() -> None:
    """The gateway outlives each test's tables: make it drop the channels of earlier tests."""
    bus.publish("channels")
    propagated()


def comparable(status: int, error: dict, model: str) -> tuple[int, dict]:
    """The refusal without what differs by design: the request id and the model asked for."""
    message = re.sub(r" \(request id: [^)]*\)$", "", error["message"]).replace(model, "<model>")
    return status, {"message": message, "type": error["type"], "param": error["param"], "code": error["code"]}


def test_no_channel_is_refused_alike_at_every_entry_point(gateway, realtime_upstream):
    user = make_user("nowhere")
    token = make_token(user)
    forget_earlier_tests()
    bearer = {"Authorization": f"Bearer sk-{token.key}"}
    with httpx.Client(base_url=gateway.url, timeout=30) as client:
        chat = client.post(
            "/v1/chat/completions",
            json={"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]},
            headers=bearer,
        )
        mj = client.post("/mj/submit/imagine", json={"prompt": "a cat"}, headers={"mj-api-secret": f"sk-{token.key}"})
        suno = client.post("/suno/submit/music", json={"prompt": "a song"}, headers=bearer)
    event, close_code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(token.key)))
    assert event["type"] == "error" and close_code == 4503, event
    refusals = [
        comparable(chat.status_code, chat.json()["error"], "gpt-4o-mini"),
        comparable(event["error"]["status"], event["error"], MODEL),
        comparable(mj.status_code, mj.json()["error"], "mj_imagine"),
        comparable(suno.status_code, suno.json()["error"], "suno_music"),
    ]
    assert refusals[0][0] == 503 and refusals[0][1]["code"] == "model_not_available", refusals[0]
    assert "当前分组 default 下对于模型 <model> 无可用渠道" in refusals[0][1]["message"]
    assert refusals == [refusals[0]] * 4


def test_realtime_passes_over_channel_types_that_do_not_speak_it(gateway, realtime_upstream):
    claude = make_channel(realtime_upstream.base_url, key="rt-claude", type=ANTHROPIC, models=MODEL, priority=10)
    openai = make_channel(realtime_upstream.base_url, key="rt-key", models=MODEL)
    user, token = persona("rt-types")
    before = len(realtime_upstream.connections)
    events = asyncio.run(session(ws_url(gateway), token.key, 1))
    assert events[-1]["type"] == "response.done", events
    assert session_log(user).channel_id == openai.pk
    dialled = realtime_upstream.connections[before:]
    assert dialled and all("rt-claude" not in str(c["headers"]) for c in dialled), dialled

    admin = make_user("rt-admin", role=ROLE_ADMIN)
    admin_token = make_token(admin)
    propagated()
    event, close_code = asyncio.run(refused(ws_url(gateway), **auth_kwargs(f"{admin_token.key}-{claude.pk}")))
    assert (event["error"]["status"], event["error"]["code"], close_code) == (400, "invalid_api_type", 4400), event
