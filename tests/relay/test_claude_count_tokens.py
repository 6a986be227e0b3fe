"""count_tokens and the model list the way Claude Code asks for them, through the real gateway:
forwarded to a Claude channel (one key of a multi-key channel), counted locally elsewhere, never billed."""

from __future__ import annotations

import anthropic
import pytest

from relay.modes.job import count_prompt
from tests.conftest import live, make_channel
from tests.fakes.agent_upstream import COUNT_TOKENS
from tests.relay.test_claude_code_sdk import (
    BASH,
    MODEL,
    SYSTEM,
    charges,
    claude_up,
    client_for,
    first_turn,
    openai_up,
    spent,
)

pytestmark = [live, pytest.mark.relay]
__all__ = ["claude_up", "openai_up"]  # module fixtures shared with the tool-round-trip tests


def test_count_tokens_native_and_free(gateway, claude_up):
    make_channel(claude_up.base_url, key="native-count", type=14, models=MODEL)
    client, user = client_for(gateway, "cc3")
    out = client.beta.messages.count_tokens(
        model=MODEL,
        system=SYSTEM,
        tools=[BASH],
        messages=first_turn(),
        betas=["claude-code-20250219"],
        extra_query={"beta": "true"},
    )
    assert out.input_tokens == COUNT_TOKENS
    sent = [
        r
        for r in claude_up.requests
        if r.path == "/v1/messages/count_tokens" and r.headers.get("x-api-key") == "native-count"
    ]
    assert len(sent) == 1 and sent[0].query == "beta=true"
    assert "claude-code-20250219" in sent[0].headers["anthropic-beta"]
    assert sent[0].body == {"model": MODEL, "system": SYSTEM, "tools": [BASH], "messages": first_turn()}
    assert spent(user) == 0 and charges(user) == []


def test_count_tokens_on_a_multi_key_channel_uses_one_key(gateway, claude_up):
    from relay.channels import multi_key

    keys = ["mk-count-1", "mk-count-2"]
    make_channel(
        claude_up.base_url,
        key="\n".join(keys),
        type=14,
        models=MODEL,
        channel_info=multi_key.new_info(2, "random"),
    )
    client, _ = client_for(gateway, "cc13")
    assert client.messages.count_tokens(model=MODEL, messages=first_turn()).input_tokens == COUNT_TOKENS
    sent = [
        r
        for r in claude_up.requests
        if r.path == "/v1/messages/count_tokens" and "mk-count" in r.headers.get("x-api-key", "")
    ]
    assert len(sent) == 1 and sent[0].headers["x-api-key"] in keys


def test_count_tokens_counted_locally_on_openai_channel(gateway, openai_up):
    make_channel(openai_up.base_url, key="oa-count", models=MODEL)
    client, user = client_for(gateway, "cc4")
    body = {"model": MODEL, "system": SYSTEM, "tools": [BASH], "messages": first_turn()}
    out = client.messages.count_tokens(**body)
    assert out.input_tokens == count_prompt("claude", body, MODEL) > 20
    assert not [r for r in openai_up.requests if r.headers.get("Authorization") == "Bearer oa-count"]
    assert spent(user) == 0
    with pytest.raises(anthropic.BadRequestError) as exc:
        client.messages.count_tokens(model=MODEL, messages=[])
    assert exc.value.body["type"] == "error"
    with pytest.raises(anthropic.InternalServerError) as exc:  # no channel serves it: the relay's refusal
        client.messages.count_tokens(model="claude-3-opus-20240229", messages=first_turn())
    assert exc.value.status_code == 503 and exc.value.body["type"] == "error"


def test_count_tokens_falls_back_to_a_local_count(gateway):
    from tests.conftest import free_port

    make_channel(
        f"http://127.0.0.1:{free_port()}", key="dead-count", type=14, models=MODEL
    )  # nothing listens
    client, user = client_for(gateway, "cc10")
    body = {"model": MODEL, "messages": first_turn()}
    assert client.messages.count_tokens(**body).input_tokens == count_prompt("claude", body, MODEL)
    assert spent(user) == 0


def test_models_in_anthropic_shape(gateway, claude_up):
    make_channel(claude_up.base_url, key="models", type=14, models=f"{MODEL},claude-3-5-haiku-20241022")
    client, _ = client_for(gateway, "cc11")
    page = client.models.list()
    assert [m.id for m in page.data] == ["claude-3-5-haiku-20241022", MODEL]
    assert page.data[0].type == "model" and page.has_more is False and page.last_id == MODEL
    assert client.models.retrieve(MODEL).display_name == MODEL
    # Claude Code signs in with x-api-key
    raw = anthropic.Anthropic(
        base_url=gateway.url, api_key=None, default_headers={"x-api-key": client.api_key}, max_retries=0
    )
    assert [m.id for m in raw.models.list().data] == ["claude-3-5-haiku-20241022", MODEL]
    with pytest.raises(anthropic.NotFoundError) as exc:
        client.models.retrieve("claude-3-opus-20240229")
    assert exc.value.body["type"] == "error"
    # an OpenAI client on the same path still gets OpenAI's list
    import httpx

    token = client.api_key
    r = httpx.get(f"{gateway.url}/v1/models", headers={"Authorization": f"Bearer {token}"})
    assert r.json()["object"] == "list" and r.json()["data"][0]["object"] == "model"
