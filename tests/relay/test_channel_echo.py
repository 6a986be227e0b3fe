"""A provider that echoes the user's input in a 400 must not let a user disable the channel."""

from __future__ import annotations

import json
from dataclasses import dataclass

import openai
import pytest
from aiohttp import web

from newapi_site.option_defaults import DEFAULT_OPTIONS
from newapi_site.options import update_option
from tests.conftest import live, make_channel, make_token, make_user, propagated
from tests.fakes.server import ThreadedServer

pytestmark = [live, pytest.mark.relay]

KEYWORD = "Your credit balance is too low"  # one of the default AutomaticDisableKeywords


@dataclass
class EchoUpstream(ThreadedServer):
    """Answers every chat with 400 and the last user message quoted back, as real providers do."""

    host: str = "127.0.0.1"
    port: int = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        body = json.loads(await request.read() or b"{}")
        said = (body.get("messages") or [{}])[-1].get("content", "")
        return web.json_response(
            {"error": {"message": f"Invalid value for 'content': {said!r}", "type": "invalid_request_error", "code": None}},
            status=400,
        )


@pytest.fixture(scope="module")
def echo_upstream():
    return EchoUpstream().start()


@pytest.fixture
def auto_disable():
    update_option("AutomaticDisableChannelEnabled", "true")
    update_option("AutomaticDisableKeywords", DEFAULT_OPTIONS["AutomaticDisableKeywords"])
    propagated()
    yield
    update_option("AutomaticDisableChannelEnabled", "false")
    propagated()


def test_echoed_keyword_in_a_400_keeps_the_channel(gateway, echo_upstream, auto_disable):
    channel = make_channel(echo_upstream.base_url, key="echo-key", name="echo")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(make_user('echoer')).key}", max_retries=0)
    for _ in range(3):
        with pytest.raises(openai.BadRequestError) as exc:
            client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": KEYWORD}])
        assert KEYWORD in exc.value.message  # the upstream did echo it
    channel.refresh_from_db()
    assert channel.status == 1


def test_invalid_key_401_still_disables(gateway, fake_upstream, auto_disable):
    channel = make_channel(fake_upstream.base_url, key="status-401", name="dead-key")
    client = openai.OpenAI(base_url=gateway.v1, api_key=f"sk-{make_token(make_user('deadkey')).key}", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        client.chat.completions.create(model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}])
    channel.refresh_from_db()
    assert channel.status == 3
